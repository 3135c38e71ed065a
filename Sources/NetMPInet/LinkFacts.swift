import NetMPInterfaces
import NetMPWire

/// What the per-packet paths read of an interface, copied out of it once per configuration.
/// Reading the interface object itself retains it: an atomic on a cache line that every
/// protocol thread sending on the interface writes, twice a packet or more.
struct LinkFacts {
    let mtu: Int
    let offloads: InterfaceOffloads
    let needsAddressResolution: Bool
    let hardwareAddress: MACAddress
    let largeSegmentLimit: Int
    /// Kept alive by the configuration's `interfaces`, which outlives every thread's use of it.
    let interface: Unmanaged<NetworkInterface>

    init(_ interface: NetworkInterface) {
        mtu = interface.mtu
        offloads = interface.offloads
        needsAddressResolution = interface.needsAddressResolution
        hardwareAddress = interface.hardwareAddress
        largeSegmentLimit = interface.largeSegmentLimit
        self.interface = Unmanaged.passUnretained(interface)
    }

    /// Hands `frames` to the interface without retaining it.
    @inline(__always) func transmit(_ frames: [Frame]) {
        interface._withUnsafeGuaranteedRef { $0.transmit(frames) }
    }
}
