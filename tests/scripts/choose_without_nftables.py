"""Print, as JSON, the name and error of the data plane `auto` chooses for one NAT virtual server.

Run with a directory ahead on PYTHONPATH whose `nftables.py` raises
ImportError, to see the fallback taken when libnftables' binding is missing.
"""

import ipaddress
import json

from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, RealServer, VirtualServer
from pykeepalived.lvs import choose

vs = VirtualServer(kind="address", address=ipaddress.ip_address("203.0.113.10"), port=80, protocol="TCP",
                   real_servers=[RealServer(ipaddress.ip_address("10.11.12.1"), 80, weight=1)])
plane = choose.choose_dataplane("auto", KeepalivedConfig(global_defs=GlobalDefs(), virtual_servers=[vs]))
print(json.dumps([plane.name, getattr(plane, "error", None)]))
