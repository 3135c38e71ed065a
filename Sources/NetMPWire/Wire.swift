// Packet views for Ethernet, ARP, IPv4, ICMP, UDP and TCP: parse and emit, no state.
