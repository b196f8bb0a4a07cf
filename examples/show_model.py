"""Print a short summary of a `pykeepalived --dump-config` JSON read from stdin."""

import json
import sys

model = json.load(sys.stdin)
for name, inst in model["vrrp_instances"].items():
    vips = ", ".join(v["address"] for v in inst["virtual_ipaddresses"])
    print(
        f"  vrrp_instance {name}: {inst['state']} on {inst['interface']}, VRID {inst['virtual_router_id']}, "
        f"priority {inst['priority']}, VIPs {vips}, sync group {inst['sync_group']}"
    )
for vs in model["virtual_servers"]:
    servers = ", ".join(f"{r['address']}:{r['port']} (weight {r['weight']})" for r in vs["real_servers"])
    where = f"{vs['address']}:{vs['port']} {vs['protocol']}"
    print(f"  virtual_server {where} {vs['lvs_sched']} {vs['lvs_method']}: {servers}")
