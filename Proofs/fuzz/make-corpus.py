#!/usr/bin/env python3
"""Writes the fuzz seed corpus (Proofs/fuzz/corpus/<target>/) from the real kernel frames in
Tests/NetMPTests/KernelCaptureFixtures.swift (captured by scripts/capture-kernel-known-answers.sh).

Each frame is cut at each layer for the parser targets; the receive target gets every frame
alone and the fragment pairs as two-record scripts (see ReceivePath.swift for the format).
The TCP target gets segments laid out as Linux sends them (the captures hold no TCP yet):
a SYN with MSS, SACK permitted, timestamps and window scale, and its SYN-ACK.
Run it again after the fixtures change; the output is committed.
"""
import os
import random
import re
import shutil
import struct
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
fixtures = os.path.join(root, "Tests", "NetMPTests", "KernelCaptureFixtures.swift")
out = os.path.join(root, "Proofs", "fuzz", "corpus")

text = open(fixtures).read()
frames = {}
for name, body in re.findall(r'static let (\w+) = kernelHex\(\s*"""(.*?)"""', text, re.S):
    frames[name] = bytes.fromhex("".join(body.split()))
if not frames:
    sys.exit("no frames found in " + fixtures)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def tcp_segment(src, dst, sport, dport, seq, ack, flags, window, options):
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    pseudo = bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 6, len(header))
    value = checksum(pseudo + header)
    return header[:16] + struct.pack("!H", value) + header[18:]


shutil.rmtree(out, ignore_errors=True)
targets = ["ethernet", "arp", "ipv4", "icmp", "udp", "tcp", "receive", "tcp-connection"]
for target in targets:
    os.makedirs(os.path.join(out, target))


def write(target, name, data):
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


def record(kind, data):
    return bytes([kind]) + struct.pack("!H", len(data)) + data


for name, frame in sorted(frames.items()):
    write("ethernet", name, frame)
    write("receive", name, frame)
    ether_type = struct.unpack("!H", frame[12:14])[0]
    payload = frame[14:]
    if ether_type == 0x0806:
        write("arp", name, payload)
    elif ether_type == 0x0800:
        write("ipv4", name, payload)
        ihl = (payload[0] & 0x0F) * 4
        total = struct.unpack("!H", payload[2:4])[0]
        proto = payload[9]
        pseudo = payload[12:20]
        transport = payload[ihl:total]
        more_fragments = payload[6] & 0x20
        offset = struct.unpack("!H", payload[6:8])[0] & 0x1FFF
        if offset == 0:
            if proto == 1:
                write("icmp", name, transport)
            elif proto == 17:
                write("udp", name, pseudo + transport)

# Fragments reassembled across two frames, and the clock moved on after a lone first half.
for kind in ("Request", "Reply"):
    first, last = frames.get("fragmented%sFirst" % kind), frames.get("fragmented%sLast" % kind)
    if first and last:
        write("receive", "fragmented%sPair" % kind, record(0, first) + record(0, last))
        # kind 2 with length 6100: the clock moves 61 s, past the reassembly timeout.
        timeout = bytes([2]) + struct.pack("!H", 6100)
        write("receive", "fragmented%sTimeout" % kind, record(0, first) + timeout + record(0, last))
if "arpRequest" in frames and "udpDatagram" in frames:
    write("receive", "arpThenUdp", record(0, frames["arpRequest"]) + record(0, frames["udpDatagram"]))

# TCP, laid out as Linux does it (198.18.7.1:40000 -> 198.18.7.2:80).
client, server = [198, 18, 7, 1], [198, 18, 7, 2]
syn_options = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10]) + struct.pack("!II", 0x6DB00B6B, 0) + bytes([1, 3, 3, 7])
syn = tcp_segment(client, server, 40000, 80, 0x01020304, 0, 0x02, 64240, syn_options)
synack_options = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10]) + struct.pack("!II", 0x11223344, 0x6DB00B6B) + bytes([1, 3, 3, 7])
synack = tcp_segment(server, client, 80, 40000, 0x0A0B0C0D, 0x01020305, 0x12, 65160, synack_options)
write("tcp", "linuxSyn", bytes(client) + bytes(server) + syn)


def ipv4_frame(src, dst, proto, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0x4000, 64, proto, 0, bytes(src), bytes(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    ethernet = bytes([2, 0, 0, 0, 7, 2, 2, 0, 0, 0, 7, 1]) + struct.pack("!H", 0x0800)
    return ethernet + header + payload


# The receive target's TCP listener is 198.18.7.2:80: a SYN to it, and one with data.
write("receive", "tcpSyn", ipv4_frame(client, server, 6, syn))
write("receive", "tcpSynThenRst", record(0, ipv4_frame(client, server, 6, syn))
      + record(0, ipv4_frame(client, server, 6, tcp_segment(client, server, 40000, 80, 0x01020305, 0, 0x04, 0, b""))))
write("tcp", "linuxSynAck", bytes(server) + bytes(client) + synack)


# Record kind 3: a segment to one of the receive target's TCP connections (TCPFixtures.swift),
# numbers relative to the connection's next ones: [role][flags][seq +/-][ack +/-][window]
# [option words][options][payload]. Roles: 0 ESTABLISHED, 1 CLOSE_WAIT, 2 FIN_WAIT_2,
# 3 TIME_WAIT; 4 and up: from port 40000 + role to the listener.
def tcp_record(role, flags, seq=0, ack=0, window=65535, options=b"", payload=b""):
    while len(options) % 4:
        options += b"\0"
    body = struct.pack("!BBhhHB", role, flags, seq, ack, window, len(options) // 4) + options + payload
    return record(3, body)


def clock(centiseconds):
    """Record kind 2: the clock moves on by `centiseconds` hundredths of a second."""
    return bytes([2]) + struct.pack("!H", centiseconds)


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
timestamps = bytes([1, 1, 8, 10]) + struct.pack("!II", 1000, 0)
sack = bytes([1, 1, 5, 10]) + struct.pack("!II", 0, 100)
roles = ["Established", "CloseWait", "FinWait2", "TimeWait"]
for role, name in enumerate(roles):
    write("receive", "tcp%sData" % name, tcp_record(role, ACK | PSH, payload=b"hello, netmp\n"))
    write("receive", "tcp%sDataFin" % name, tcp_record(role, ACK | PSH | FIN, payload=b"last words"))
    write("receive", "tcp%sRst" % name, tcp_record(role, RST))
    write("receive", "tcp%sRstAck" % name, tcp_record(role, RST | ACK, seq=5))
    write("receive", "tcp%sSyn" % name, tcp_record(role, SYN, seq=1000, options=bytes([2, 4, 5, 0xB4])))
    write("receive", "tcp%sAheadThenFill" % name,
          tcp_record(role, ACK, seq=7, payload=b"world") + tcp_record(role, ACK, payload=b"hello, ")
          + tcp_record(role, ACK | FIN, seq=12))
    write("receive", "tcp%sOldAndFutureAck" % name, tcp_record(role, ACK, ack=-3) + tcp_record(role, ACK, ack=4000))
    write("receive", "tcp%sOptions" % name, tcp_record(role, ACK, options=timestamps + sack, payload=b"x" * 40))
    write("receive", "tcp%sZeroWindowThenTime" % name,
          tcp_record(role, ACK, window=0) + clock(3000) + tcp_record(role, ACK))
write("receive", "tcpNewPeerHandshake", tcp_record(9, SYN, seq=100, options=bytes([2, 4, 5, 0xB4]))
      + tcp_record(9, ACK, seq=101, ack=1) + tcp_record(9, ACK | PSH | FIN, seq=101, ack=1, payload=b"GET /"))

# The TCP connection target (TCPFuzz): its input is a stream of decisions, so seeded random
# bytes of a few lengths reach every state.
rng = random.Random(12)
for length in (16, 64, 256, 1024, 4096):
    write("tcp-connection", "random%d" % length, bytes(rng.getrandbits(8) for _ in range(length)))
count = sum(len(files) for _, _, files in os.walk(out))
print("wrote %d corpus files under %s" % (count, os.path.relpath(out, root)))
