import NetMP
print("netmp \(NetMPVersion.string)")
