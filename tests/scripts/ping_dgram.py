"""PING_CHECK's probe over the unprivileged datagram socket, once to each ADDRESS.

argv: address... Prints [[ok, reason], ...] as JSON (tests/netns/test_check_misc_ping_udp.py).
"""

import asyncio
import ipaddress
import json
import sys

from pykeepalived.check.ping import PingProbe
from pykeepalived.check.probe import Target


async def main() -> list[tuple[bool, str]]:
    probes = [PingProbe(Target(ipaddress.ip_address(a), None, 1.0), "dgram") for a in sys.argv[1:]]
    return [(r.ok, r.reason) for r in await asyncio.gather(*(p.run() for p in probes))]


print(json.dumps(asyncio.run(main())))
