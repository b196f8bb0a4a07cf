"""A UDP echo service (replies "OK:" + data) and a silent one, on IPv4 and IPv6.

argv: echo_port silent_port. Prints READY once bound, then serves until killed
(tests/netns/test_check_misc_ping_udp.py).
"""

import select
import socket
import sys

echo_port, silent_port = int(sys.argv[1]), int(sys.argv[2])
ports = {}
for family, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in (echo_port, silent_port):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((any_addr, port))
        ports[s] = port
print("READY", flush=True)
while True:
    for s in select.select(list(ports), [], [])[0]:
        data, peer = s.recvfrom(65536)
        if ports[s] == echo_port:
            s.sendto(b"OK:" + data, peer)
