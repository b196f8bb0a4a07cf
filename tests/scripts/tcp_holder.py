"""Hold COUNT TCP connections to VIP:PORT open for SECONDS, then exit.

argv: vip port count seconds (tests/netns/test_dataplane_lab.py).
"""

import socket
import sys
import time

vip, port, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
held = [socket.create_connection((vip, port)) for _ in range(count)]
time.sleep(seconds)
