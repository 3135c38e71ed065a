// `import NetMP` is all a user writes: the public parts of the layers below come with it (the
// runtime's clocks and protocol threads, socket errors and addresses, interfaces and pcap,
// IPv4 settings and pings, and the wire types such as IPv4Address and MACAddress).
@_exported import NetMPInet
@_exported import NetMPInterfaces
@_exported import NetMPRuntime
@_exported import NetMPSockets
@_exported import NetMPTCP
@_exported import NetMPWire
