#!/usr/bin/env bash
# Captures the frames of Tests/NetMPTests/KernelCaptureFixtures.swift: what the Linux kernel
# sends for ARP, ICMP echo (whole and fragmented) and UDP with a port unreachable, over a veth
# pair between two network namespaces this script creates and deletes. Root only; addresses
# in 198.18.0.0/15 only. Writes the capture to ${1:-kernel-known-answers.pcap}.
set -euo pipefail
out=${1:-kernel-known-answers.pcap}
a=nmka0 b=nmka1
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add nmkva netns "$a" type veth peer name nmkvb netns "$b"
for ns in "$a" "$b"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
ip -n "$a" link set nmkva address 02:00:00:00:07:01
ip -n "$b" link set nmkvb address 02:00:00:00:07:02
ip -n "$a" addr add 198.18.7.1/24 dev nmkva
ip -n "$b" addr add 198.18.7.2/24 dev nmkvb
# No checksum offload: the capture shows the checksums a wire would carry (a veth otherwise
# leaves UDP's as the pseudo-header sum for the peer to trust).
ip netns exec "$a" ethtool -K nmkva tx off rx off >/dev/null
ip netns exec "$b" ethtool -K nmkvb tx off rx off >/dev/null
ip -n "$a" link set nmkva up
ip -n "$b" link set nmkvb up
sleep 1
ip netns exec "$a" tshark -q -i nmkva -f "arp or ip" -F pcap -w "$out" -a duration:8 &
capture=$!
sleep 2
ip netns exec "$a" ping -c 1 -s 56 -p 4e65744d50 -W 1 198.18.7.2 >/dev/null
ip netns exec "$a" ping -c 1 -s 2000 -p 4e65744d50 -W 1 198.18.7.2 >/dev/null
ip netns exec "$a" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.18.7.1', 40001))
s.sendto(b'NetMP known answer', ('198.18.7.2', 9))"
wait "$capture"
tshark -r "$out"
