"""repair() of the nftables backend after `nft flush ruleset` or a replaced table, and changes after it.

Prints what each step reported (tests/netns/test_nft_repair.py).
"""

import json
import subprocess
from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

def web(*alive):
    dests = tuple(Destination(f"10.11.12.{i}", 80, 1, alive=i in alive) for i in (1, 2, 3))
    return VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=dests)

def rules(b):
    listed = b.nft.run([{"list": {"table": {"family": "ip", "name": "pykeepalived_lvs"}}}])
    return sorted(json.dumps(i["rule"]["expr"]) for i in listed["nftables"] if "rule" in i)

def nft(*words):
    subprocess.run(["nft", *words], check=True)

out = {}
b = NftablesBackend()
b.apply_now(DesiredTable((web(1, 2, 3),)))
before = rules(b)
out["nothing_to_do"] = b.repair_now()

nft("flush", "ruleset")
out["after_flush"] = b.repair_now()
out["same_rules_after_flush"] = rules(b) == before
out["then_nothing"] = b.repair_now()

nft("delete", "table", "ip", "pykeepalived_lvs")
nft("add", "table", "ip", "pykeepalived_lvs")
out["after_replace"] = b.repair_now()
out["same_rules_after_replace"] = rules(b) == before

nft("flush", "ruleset")  # and the next change comes before repair() looks
b.apply_now(DesiredTable((web(1, 3),)))
after = rules(b)
out["change_after_flush"] = any("10.11.12.3" in r for r in after) and not any("10.11.12.2" in r for r in after)
out["then_nothing_again"] = b.repair_now()
b.close_now()
print(json.dumps(out))
