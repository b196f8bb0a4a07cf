"""Connection counts of both families through the nftables backend, and uthreshold stopping new connections.

Prints the servers reached before and after a rebalance, the counts and the
overloaded destinations (tests/netns/test_nft_backend.py).
"""

import asyncio
import json
import socket

from nft_servers import listen

from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

for address in ("10.11.12.1", "10.11.12.2", "2001:db8:1::1"):
    listen(address, hold=True)

clients = []
def connect(family, vip):
    c = socket.create_connection((vip, 80), timeout=5)
    clients.append(c)
    return c.recv(100).decode().strip()

v4 = VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=(
    Destination("10.11.12.1", 80, 1, uthreshold=2), Destination("10.11.12.2", 80, 1)))
v6 = VirtualService("web6", "address", "2001:db8::10", 80, "TCP", scheduler="rr", destinations=(
    Destination("2001:db8:1::1", 80, 1),))
b = NftablesBackend()
table = DesiredTable((v4, v6))
b.apply_now(table)
first = [connect(socket.AF_INET, "203.0.113.10") for _ in range(4)]
ipv6 = connect(socket.AF_INET6, "2001:db8::10")
counts = b.counts_now()
asyncio.run(b.rebalance(counts))
overloaded = sorted(map(list, b.ctx.overloaded))
later = [connect(socket.AF_INET, "203.0.113.10") for _ in range(4)]
b.close_now()
print(json.dumps({"first": first, "later": later, "ipv6": ipv6, "counts": counts, "overloaded": overloaded}))
