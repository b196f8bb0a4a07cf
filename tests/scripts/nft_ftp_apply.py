"""The FTP services of the nftables test: port 21 of VIP, and fwmark 21 with persistence, to SERVER.

argv: vip server. Applies and exits without closing: the rules stay for the
test (tests/netns/test_nft_ftp.py).
"""

import sys

from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

vip, server = sys.argv[1], sys.argv[2]
port21 = VirtualService("ftp", "address", vip, 21, "TCP", scheduler="rr",
                        destinations=(Destination(server, 21, 1),))
marked = VirtualService("ftp-mark", "fwmark", fwmark=21, scheduler="rr", persistence_timeout_s=60,
                        destinations=(Destination(server, None, 1),))
NftablesBackend().apply_now(DesiredTable((port21, marked)))
