"""The nftables backend in this namespace: apply, change, a failed apply, close.

Prints the table's JSON listing after each step, the failure's message and the
tables left after close (tests/netns/test_nft_backend.py).
"""

import json
from pykeepalived.lvs.model import DataPlaneError, DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

def web(*alive):
    dests = tuple(Destination(f"10.11.12.{i}", 80, 1, alive=i in alive) for i in (1, 2, 3))
    return VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=dests)

def dr():
    dests = (Destination("10.11.12.5", 80, 1, method="DR"),)
    return VirtualService("dr", "address", "203.0.113.11", 80, "TCP", method="DR", destinations=dests)

def listing(b):
    return b.nft.run([{"list": {"table": {"family": "ip", "name": "pykeepalived_lvs"}}}])

b = NftablesBackend()
b.ctx.device_for = lambda address: "lo"
b.apply_now(DesiredTable((web(1, 2, 3),)))
before = listing(b)
b.apply_now(DesiredTable((web(1, 3),)))
after_change = listing(b)
b.ctx.device_for = lambda address: "no-such-dev"
try:
    b.apply_now(DesiredTable((web(1, 2, 3), dr())))
    failed = None
except DataPlaneError as exc:
    failed = str(exc)
after_failure = listing(b)
b.close_now()
gone = b.nft._nft.cmd("list tables")[1]
print(json.dumps({"before": before, "after_change": after_change, "failed": failed,
                  "after_failure": after_failure, "tables_after_close": gone}))
