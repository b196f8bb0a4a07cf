"""Persistence through the nftables backend: a client stays on one server until the timeout passes.

Prints the servers reached within the timeout and after it (tests/netns/test_nft_backend.py).
"""

import json
import socket
import time

from nft_servers import listen

from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

for address in ("10.11.12.1", "10.11.12.2"):
    listen(address, hold=False)

def ask():
    with socket.create_connection(("203.0.113.10", 80), timeout=5) as c:
        return c.recv(100).decode().strip()

svc = VirtualService("p", "address", "203.0.113.10", 80, "TCP", scheduler="rr", persistence_timeout_s=2,
                     destinations=(Destination("10.11.12.1", 80, 1), Destination("10.11.12.2", 80, 1)))
b = NftablesBackend()
b.apply_now(DesiredTable((svc,)))
within = []
for _ in range(4):
    within.append(ask())
    time.sleep(0.5)  # each new connection refreshes the client's entry
time.sleep(3.0)  # past the timeout since the last one
after = ask()
b.close_now()
print(json.dumps({"within": within, "after": after}))
