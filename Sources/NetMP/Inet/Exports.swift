// Users of NetMP get the wire types (IPv4Address, MACAddress, IPv4Prefix, ...) with it.
@_exported import NetMPWire
