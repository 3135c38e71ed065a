/// What the connection tells its congestion controller beyond losses: per-ACK samples with the RTT
/// and round, and whether the window was in use (RFC 7661); for a rate-based controller, a
/// delivery-rate sample per ACK.
extension TCPConnection {
    /// After output sent what it could: record the flight, and whether the congestion window (rather
    /// than the peer's window, Nagle or a lack of data) held data back.
    @inline(__always)
    mutating func noteCongestionWindowUse() {
        let flight = flightSize
        windowValidation.sent(flight: flight)
        let unsent = sendQueueEnd - sendNext
        guard unsent > 0 else {
            // Nothing left to send and room to send it: rate samples now measure the application.
            // (The congestion window is read only where it decides something.)
            if rateBasedSending != nil, scoreboard.lostBytes == 0, flight < congestionWindow {
                updateRateBasedSending { $0.rates.applicationLimited(flight: flight) }
            }
            return
        }
        let window = congestionWindow
        guard window <= sendWindow else { return }
        let usable = (sendUnacknowledged + window) - sendNext
        if usable < Swift.min(unsent, maximumSegmentSize) {
            windowValidation.stoppedByCongestionWindow()
        }
    }

    /// The sample for an ACK of `bytes` outside recovery; `rtt` is what the ACK measured, if anything.
    @inline(__always) func acknowledgmentSample(bytes: Int, rtt: Int64?, now: Int64) -> TCPAcknowledgmentSample {
        TCPAcknowledgmentSample(
            bytes: bytes, maximumSegmentSize: maximumSegmentSize, now: now, acknowledgment: sendUnacknowledged,
            sendMax: sendMax, rtt: rtt, smoothedRTT: retransmissionTimeout.smoothedRTT,
            windowValidated: windowValidation.isValidated(congestionWindow: congestionWindow))
    }

    // MARK: Delivery-rate samples and pacing (rate-based controllers only)

    /// Gives the connection a delivery-rate estimator and pacer when its controller is rate-based,
    /// and drops them otherwise (a switch mid-connection starts the estimate afresh).
    mutating func matchRateBasedSending() {
        if congestionControl.isRateBased {
            if rateBasedSending == nil {
                rateBasedSending = RateBasedSendingStorage()
            }
        } else {
            rateBasedSending = nil
        }
    }

    /// Runs `body` on the rate-based state (copied first if another connection value shares it);
    /// nil when there is none.
    @discardableResult
    mutating func updateRateBasedSending<Result>(_ body: (RateBasedSendingStorage) -> Result) -> Result? {
        guard var storage = rateBasedSending else { return nil }
        rateBasedSending = nil
        if !isKnownUniquelyReferenced(&storage) {
            storage = RateBasedSendingStorage(rates: storage.rates, pacer: storage.pacer)
        }
        let result = body(storage)
        rateBasedSending = storage
        return result
    }

    /// Transmissions go on the scoreboard with SACK, and for a rate-based controller's samples.
    var recordsTransmissions: Bool { sackPermitted || rateBasedSending != nil }

    /// What a transmission sent now records of the delivery state (nothing without a rate-based
    /// controller: that test is inlined, as most connections send without one).
    @inline(__always)
    mutating func deliveryRateSnapshot(now: Int64) -> DeliveryRateSnapshot {
        rateBasedSending == nil ? DeliveryRateSnapshot() : estimatorSnapshot(now: now)
    }

    private mutating func estimatorSnapshot(now: Int64) -> DeliveryRateSnapshot {
        let flight = flightSize
        return updateRateBasedSending { $0.rates.snapshot(now: now, flight: flight) } ?? DeliveryRateSnapshot()
    }

    /// Ends an ACK's processing for a rate-based controller: the estimator's sample goes to it.
    mutating func sendRateSample(now: Int64, lost: Int, priorInFlight: Int, inFlight: Int) {
        let mss = maximumSegmentSize
        let minimumRTT = rack.minimumRTT
        guard
            let sample = updateRateBasedSending({
                $0.rates.sample(
                    now: now, maximumSegmentSize: mss, minimumRTT: minimumRTT, lost: lost,
                    priorInFlight: priorInFlight, inFlight: inFlight)
            })
        else { return }
        congestionControl.rateSampled(sample)
    }

    /// Whether the pacer lets a segment go now (always, without pacing); if not, the pacing timer
    /// is armed for when it will. Without a rate-based controller the answer is inlined.
    @inline(__always)
    mutating func pacingAllowsDeparture(now: Int64) -> Bool {
        rateBasedSending == nil || pacerAllowsDeparture(now: now)
    }

    private mutating func pacerAllowsDeparture(now: Int64) -> Bool {
        guard congestionControl.pacingRate != nil else { return true }
        return updateRateBasedSending { $0.pacer.mayDepart(now: now) } ?? true
    }

    /// A segment carrying `bytes` of data left: the pacer charges it.
    mutating func pacedDeparture(bytes: Int, now: Int64) {
        guard rateBasedSending != nil, let rate = congestionControl.pacingRate else { return }
        let mss = maximumSegmentSize
        updateRateBasedSending { $0.pacer.sent(bytes: bytes, now: now, rate: rate, maximumSegmentSize: mss) }
    }
}
