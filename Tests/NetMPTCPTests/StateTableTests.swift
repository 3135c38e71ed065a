import NetMPTCP
import NetMPWire
import XCTest

/// RFC 9293's state machine by tables: every state against every kind of segment and user call,
/// with the exact segments sent and the state that results. Our ISN is 1000 and the peer's 5000.
final class StateTableTests: XCTestCase {
    enum Stimulus: String, CaseIterable {
        case syn, synAck, ackInWindow, ackOutOfWindow, data, fin, rstInWindow, rstOutOfWindow, badAck
        case userSend, userClose, userShutdown, userAbort
    }

    /// A connection driven through real events into `state`.
    static func harness(in state: TCPState) -> Harness {
        switch state {
        case .closed:
            return Harness(
                Connection(
                    configuration: plainConfiguration(), localPort: 40000, remotePort: 80,
                    initialSequenceNumber: SequenceNumber(1000)))
        case .synSent:
            return .connecting()
        case .synReceived:
            return .accepting()
        case .established:
            var harness = Harness.accepting()
            harness.receive(peer(.ack, 5001, 1001))
            return harness
        case .finWait1:
            var harness = harness(in: .established)
            harness.run { $0.close(now: $1, into: &$2) }
            return harness
        case .finWait2:
            var harness = harness(in: .finWait1)
            harness.receive(peer(.ack, 5001, 1002))
            return harness
        case .closing:
            var harness = harness(in: .finWait1)
            harness.receive(peer([.fin, .ack], 5001, 1001))
            return harness
        case .closeWait:
            var harness = harness(in: .established)
            harness.receive(peer([.fin, .ack], 5001, 1001))
            return harness
        case .lastAck:
            var harness = harness(in: .closeWait)
            harness.run { $0.close(now: $1, into: &$2) }
            return harness
        case .timeWait:
            var harness = harness(in: .finWait2)
            harness.receive(peer([.fin, .ack], 5001, 1002))
            return harness
        case .listen:
            return .connecting()
        }
    }

    /// Applies `stimulus` and describes what happened: "segments -> STATE (+flags)".
    static func outcome(of stimulus: Stimulus, in state: TCPState) -> String {
        var harness = harness(in: state)
        let next = harness.connection.receiveNext.rawValue
        let ours = harness.connection.sendMax.rawValue
        let far = next &+ 100_000
        switch stimulus {
        case .syn: harness.receive(peer(.syn, 9000))
        case .synAck: harness.receive(peer([.syn, .ack], 9000, ours))
        case .ackInWindow: harness.receive(peer(.ack, next, ours))
        case .ackOutOfWindow: harness.receive(peer(.ack, far, ours))
        case .data: harness.receive(peer([.ack, .psh], next, ours), payload: Array(repeating: 7, count: 10))
        case .fin: harness.receive(peer([.fin, .ack], next, ours))
        case .rstInWindow: harness.receive(peer(.rst, next))
        case .rstOutOfWindow: harness.receive(peer(.rst, far))
        case .badAck: harness.receive(peer(.ack, next, ours &+ 500))
        case .userSend: harness.run { $0.send(count: 10, now: $1, into: &$2) }
        case .userClose: harness.run { $0.close(now: $1, into: &$2) }
        case .userShutdown: harness.run { $0.shutdownWrite(now: $1, into: &$2) }
        case .userAbort: harness.run { $0.abort(now: $1, into: &$2) }
        }
        var text = harness.sent.map(\.description).joined(separator: " ")
        text += (text.isEmpty ? "" : " ") + "-> \(harness.state)"
        let actions = harness.actions
        if actions.established { text += " established" }
        if actions.endOfStream { text += " eof" }
        if let error = actions.error { text += " \(error)" }
        if actions.closed { text += " closed" }
        if actions.deliveredByteCount > 0 { text += " delivered \(actions.deliveredByteCount)" }
        return text
    }

    static let states: [TCPState] = [
        .closed, .synSent, .synReceived, .established, .finWait1, .finWait2, .closing, .closeWait, .lastAck,
        .timeWait,
    ]

    func testSetUpReachesEachState() {
        for state in StateTableTests.states {
            XCTAssertEqual(StateTableTests.harness(in: state).state, state)
        }
    }

    func testEveryStateAgainstEverySegmentAndCall() {
        var actual: [String] = []
        for state in StateTableTests.states {
            for stimulus in Stimulus.allCases {
                actual.append("\(state) \(stimulus.rawValue): \(StateTableTests.outcome(of: stimulus, in: state))")
            }
        }
        let expected = StateTableTests.expected
        for (index, line) in actual.enumerated() {
            XCTAssertEqual(line, index < expected.count ? expected[index] : "<missing>")
        }
        XCTAssertEqual(actual.count, expected.count)
        if actual != expected {
            print(actual.map { "\"\($0)\"," }.joined(separator: "\n"))
        }
    }

    static let expected: [String] = [
        "CLOSED syn: [R. 0:9001 len 0] -> CLOSED",
        "CLOSED synAck: [R 1000:0 len 0] -> CLOSED",
        "CLOSED ackInWindow: [R 1000:0 len 0] -> CLOSED",
        "CLOSED ackOutOfWindow: [R 1000:0 len 0] -> CLOSED",
        "CLOSED data: [R 1000:0 len 0] -> CLOSED",
        "CLOSED fin: [R 1000:0 len 0] -> CLOSED",
        "CLOSED rstInWindow: -> CLOSED",
        "CLOSED rstOutOfWindow: -> CLOSED",
        "CLOSED badAck: [R 1500:0 len 0] -> CLOSED",
        "CLOSED userSend: -> CLOSED",
        "CLOSED userClose: -> CLOSED closed",
        "CLOSED userShutdown: -> CLOSED closed",
        "CLOSED userAbort: -> CLOSED closed",
        "SYN_SENT syn: [S. 1000:9001 len 0] -> SYN_RECEIVED",
        "SYN_SENT synAck: [. 1001:9001 len 0] -> ESTABLISHED established",
        "SYN_SENT ackInWindow: -> SYN_SENT",
        "SYN_SENT ackOutOfWindow: -> SYN_SENT",
        "SYN_SENT data: -> SYN_SENT",
        "SYN_SENT fin: -> SYN_SENT",
        "SYN_SENT rstInWindow: -> SYN_SENT",
        "SYN_SENT rstOutOfWindow: -> SYN_SENT",
        "SYN_SENT badAck: [R 1501:0 len 0] -> SYN_SENT",
        "SYN_SENT userSend: -> SYN_SENT",
        "SYN_SENT userClose: -> CLOSED closed",
        "SYN_SENT userShutdown: -> SYN_SENT",
        "SYN_SENT userAbort: -> CLOSED closed",
        "SYN_RECEIVED syn: [. 1001:5001 len 0] -> SYN_RECEIVED",
        "SYN_RECEIVED synAck: [. 1001:5001 len 0] -> SYN_RECEIVED",
        "SYN_RECEIVED ackInWindow: -> ESTABLISHED established",
        "SYN_RECEIVED ackOutOfWindow: [. 1001:5001 len 0] -> SYN_RECEIVED",
        "SYN_RECEIVED data: [. 1001:5011 len 0] -> ESTABLISHED established delivered 10",
        "SYN_RECEIVED fin: [. 1001:5002 len 0] -> CLOSE_WAIT established eof",
        "SYN_RECEIVED rstInWindow: -> CLOSED connectionReset closed",
        "SYN_RECEIVED rstOutOfWindow: -> SYN_RECEIVED",
        "SYN_RECEIVED badAck: [R 1501:0 len 0] -> SYN_RECEIVED",
        "SYN_RECEIVED userSend: -> SYN_RECEIVED",
        "SYN_RECEIVED userClose: -> SYN_RECEIVED",
        "SYN_RECEIVED userShutdown: -> SYN_RECEIVED",
        "SYN_RECEIVED userAbort: [R. 1001:5001 len 0] -> CLOSED closed",
        "ESTABLISHED syn: [. 1001:5001 len 0] -> ESTABLISHED",
        "ESTABLISHED synAck: [. 1001:5001 len 0] -> ESTABLISHED",
        "ESTABLISHED ackInWindow: -> ESTABLISHED",
        "ESTABLISHED ackOutOfWindow: [. 1001:5001 len 0] -> ESTABLISHED",
        "ESTABLISHED data: [. 1001:5011 len 0] -> ESTABLISHED delivered 10",
        "ESTABLISHED fin: [. 1001:5002 len 0] -> CLOSE_WAIT eof",
        "ESTABLISHED rstInWindow: -> CLOSED connectionReset closed",
        "ESTABLISHED rstOutOfWindow: -> ESTABLISHED",
        "ESTABLISHED badAck: [. 1001:5001 len 0] -> ESTABLISHED",
        "ESTABLISHED userSend: [P. 1001:5001 len 10] -> ESTABLISHED",
        "ESTABLISHED userClose: [F. 1001:5001 len 0] -> FIN_WAIT_1",
        "ESTABLISHED userShutdown: [F. 1001:5001 len 0] -> FIN_WAIT_1",
        "ESTABLISHED userAbort: [R. 1001:5001 len 0] -> CLOSED closed",
        "FIN_WAIT_1 syn: [. 1002:5001 len 0] -> FIN_WAIT_1",
        "FIN_WAIT_1 synAck: [. 1002:5001 len 0] -> FIN_WAIT_1",
        "FIN_WAIT_1 ackInWindow: -> FIN_WAIT_2",
        "FIN_WAIT_1 ackOutOfWindow: [. 1002:5001 len 0] -> FIN_WAIT_1",
        "FIN_WAIT_1 data: [. 1002:5011 len 0] -> FIN_WAIT_2 delivered 10",
        "FIN_WAIT_1 fin: [. 1002:5002 len 0] -> TIME_WAIT eof",
        "FIN_WAIT_1 rstInWindow: -> CLOSED connectionReset closed",
        "FIN_WAIT_1 rstOutOfWindow: -> FIN_WAIT_1",
        "FIN_WAIT_1 badAck: [. 1002:5001 len 0] -> FIN_WAIT_1",
        "FIN_WAIT_1 userSend: -> FIN_WAIT_1",
        "FIN_WAIT_1 userClose: -> FIN_WAIT_1",
        "FIN_WAIT_1 userShutdown: -> FIN_WAIT_1",
        "FIN_WAIT_1 userAbort: [R. 1002:5001 len 0] -> CLOSED closed",
        "FIN_WAIT_2 syn: [. 1002:5001 len 0] -> FIN_WAIT_2",
        "FIN_WAIT_2 synAck: [. 1002:5001 len 0] -> FIN_WAIT_2",
        "FIN_WAIT_2 ackInWindow: -> FIN_WAIT_2",
        "FIN_WAIT_2 ackOutOfWindow: [. 1002:5001 len 0] -> FIN_WAIT_2",
        "FIN_WAIT_2 data: [. 1002:5011 len 0] -> FIN_WAIT_2 delivered 10",
        "FIN_WAIT_2 fin: [. 1002:5002 len 0] -> TIME_WAIT eof",
        "FIN_WAIT_2 rstInWindow: -> CLOSED connectionReset closed",
        "FIN_WAIT_2 rstOutOfWindow: -> FIN_WAIT_2",
        "FIN_WAIT_2 badAck: [. 1002:5001 len 0] -> FIN_WAIT_2",
        "FIN_WAIT_2 userSend: -> FIN_WAIT_2",
        "FIN_WAIT_2 userClose: -> FIN_WAIT_2",
        "FIN_WAIT_2 userShutdown: -> FIN_WAIT_2",
        "FIN_WAIT_2 userAbort: [R. 1002:5001 len 0] -> CLOSED closed",
        "CLOSING syn: [. 1002:5002 len 0] -> CLOSING",
        "CLOSING synAck: [. 1002:5002 len 0] -> CLOSING",
        "CLOSING ackInWindow: -> TIME_WAIT",
        "CLOSING ackOutOfWindow: [. 1002:5002 len 0] -> CLOSING",
        "CLOSING data: [. 1002:5002 len 0] -> TIME_WAIT",
        "CLOSING fin: [. 1002:5002 len 0] -> TIME_WAIT",
        "CLOSING rstInWindow: -> CLOSED closed",
        "CLOSING rstOutOfWindow: -> CLOSING",
        "CLOSING badAck: [. 1002:5002 len 0] -> CLOSING",
        "CLOSING userSend: -> CLOSING",
        "CLOSING userClose: -> CLOSING",
        "CLOSING userShutdown: -> CLOSING",
        "CLOSING userAbort: -> CLOSED closed",
        "CLOSE_WAIT syn: [. 1001:5002 len 0] -> CLOSE_WAIT",
        "CLOSE_WAIT synAck: [. 1001:5002 len 0] -> CLOSE_WAIT",
        "CLOSE_WAIT ackInWindow: -> CLOSE_WAIT",
        "CLOSE_WAIT ackOutOfWindow: [. 1001:5002 len 0] -> CLOSE_WAIT",
        "CLOSE_WAIT data: [. 1001:5002 len 0] -> CLOSE_WAIT",
        "CLOSE_WAIT fin: [. 1001:5002 len 0] -> CLOSE_WAIT",
        "CLOSE_WAIT rstInWindow: -> CLOSED connectionReset closed",
        "CLOSE_WAIT rstOutOfWindow: -> CLOSE_WAIT",
        "CLOSE_WAIT badAck: [. 1001:5002 len 0] -> CLOSE_WAIT",
        "CLOSE_WAIT userSend: [P. 1001:5002 len 10] -> CLOSE_WAIT",
        "CLOSE_WAIT userClose: [F. 1001:5002 len 0] -> LAST_ACK",
        "CLOSE_WAIT userShutdown: [F. 1001:5002 len 0] -> LAST_ACK",
        "CLOSE_WAIT userAbort: [R. 1001:5002 len 0] -> CLOSED closed",
        "LAST_ACK syn: [. 1002:5002 len 0] -> LAST_ACK",
        "LAST_ACK synAck: [. 1002:5002 len 0] -> LAST_ACK",
        "LAST_ACK ackInWindow: -> CLOSED closed",
        "LAST_ACK ackOutOfWindow: [. 1002:5002 len 0] -> LAST_ACK",
        "LAST_ACK data: -> CLOSED closed",
        "LAST_ACK fin: -> CLOSED closed",
        "LAST_ACK rstInWindow: -> CLOSED closed",
        "LAST_ACK rstOutOfWindow: -> LAST_ACK",
        "LAST_ACK badAck: [. 1002:5002 len 0] -> LAST_ACK",
        "LAST_ACK userSend: -> LAST_ACK",
        "LAST_ACK userClose: -> LAST_ACK",
        "LAST_ACK userShutdown: -> LAST_ACK",
        "LAST_ACK userAbort: -> CLOSED closed",
        "TIME_WAIT syn: [. 1002:5002 len 0] -> TIME_WAIT",
        "TIME_WAIT synAck: [. 1002:5002 len 0] -> TIME_WAIT",
        "TIME_WAIT ackInWindow: -> TIME_WAIT",
        "TIME_WAIT ackOutOfWindow: [. 1002:5002 len 0] -> TIME_WAIT",
        "TIME_WAIT data: [. 1002:5002 len 0] -> TIME_WAIT",
        "TIME_WAIT fin: [. 1002:5002 len 0] -> TIME_WAIT",
        "TIME_WAIT rstInWindow: -> CLOSED closed",
        "TIME_WAIT rstOutOfWindow: -> TIME_WAIT",
        "TIME_WAIT badAck: [. 1002:5002 len 0] -> TIME_WAIT",
        "TIME_WAIT userSend: -> TIME_WAIT",
        "TIME_WAIT userClose: -> TIME_WAIT",
        "TIME_WAIT userShutdown: -> TIME_WAIT",
        "TIME_WAIT userAbort: -> CLOSED closed",
    ]
}
