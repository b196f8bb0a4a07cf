"""Connect to ADDRESS:PORT (3 s at most) and print the peer's address as this socket sees it.

argv: address port (tests/netns/test_check_notrack.py: through a VIP, the VIP once its reply was un-NATed).
"""

import socket
import sys

with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as sock:
    print(sock.getpeername()[0])
