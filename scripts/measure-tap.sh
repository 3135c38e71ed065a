#!/bin/bash
# Until `netmp bench tap` exists: the kernel talking to itself over a veth pair between two
# namespaces, side by side with the kernel talking to `netmp serve` over a TAP device in a third.
# Root only; every address is in 198.18.0.0/15 inside namespaces this script makes and deletes.
#   scripts/measure-tap.sh .build/release/netmp            (THREADS=2, EXTRA=--no-large-receive)
# Needs TCP sockets in the build. Prints ping RTT, one connection's bulk throughput (a Python
# client sending 1 GiB to discard) and a 64-byte TCP round trip (to echo; the kernel's echo
# server is Python, NetMP's is compiled, so read that pair with care).
set -u
NETMP=${1:?usage: measure-tap.sh path/to/netmp}
A=netmp-m$$-a; B=netmp-m$$-b; T=netmp-m$$-t
cleanup() { kill $(jobs -p) 2>/dev/null; ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; ip netns del $T 2>/dev/null; }
trap cleanup EXIT
SERVE=0
ip netns add $A; ip netns add $B; ip netns add $T
ip link add va netns $A type veth peer name vb netns $B
ip -n $A addr add 198.18.1.1/24 dev va; ip -n $B addr add 198.18.1.2/24 dev vb
ip -n $A link set va up; ip -n $B link set vb up; ip -n $A link set lo up; ip -n $B link set lo up
ip -n $T tuntap add dev tap0 mode tap multi_queue vnet_hdr
ip -n $T addr add 198.18.0.1/24 dev tap0; ip -n $T link set tap0 up
ip netns exec $T "$NETMP" serve --tap tap0 --address 198.18.0.2/24 --discard 9 --echo 7 ${THREADS:+--threads $THREADS} ${EXTRA:-} > /tmp/tap-measure-serve.out 2>&1 &
SERVE=$!
ip netns exec $B python3 -c '
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.1.2",9)); s.listen(8)
while True:
    c,_=s.accept()
    buf=bytearray(1<<20)
    while c.recv_into(buf): pass
    c.close()' &
ip netns exec $B python3 -c '
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.1.2",7)); s.listen(8)
while True:
    c,_=s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d=c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()' &
ping_avg() { ip netns exec $1 ping -q -c 300 -i 0.002 $2 | tail -1; }
echo "ping veth (kernel<->kernel): $(ping_avg $A 198.18.1.2)"
ip netns exec $T ping -q -c 20 -i 0.05 198.18.0.2 >/dev/null
echo "ping tap   (kernel->NetMP):  $(ping_avg $T 198.18.0.2)"
CLIENT='
import socket, sys, time
host=sys.argv[1]; total=int(sys.argv[2])
for attempt in range(50):
    try:
        s=socket.create_connection((host,9),timeout=30); break
    except OSError: time.sleep(0.1)
block=bytes(1<<20); t=time.time(); sent=0
while sent<total: s.sendall(block); sent+=len(block)
s.shutdown(socket.SHUT_WR); s.recv(1); el=time.time()-t
print("%.2f Gbit/s (%d MiB in %.2f s)"%(sent*8/el/1e9, sent>>20, el))
for attempt in range(50):
    try:
        e=socket.create_connection((host,7),timeout=30); break
    except OSError: time.sleep(0.1)
e.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n=2000; t=time.time()
for i in range(n):
    e.sendall(b"x"*64); got=0
    while got<64: got+=len(e.recv(64-got))
print("   TCP 64-byte round trip: %.1f us"%((time.time()-t)/n*1e6))
'
echo "kernel->kernel veth TCP: $(ip netns exec $A python3 -c "$CLIENT" 198.18.1.2 $((1<<30)))"
echo "kernel->NetMP  tap  TCP: $(ip netns exec $T python3 -c "$CLIENT" 198.18.0.2 $((1<<30)))"
