"""The kernel accepts every layout the nftables builder makes, and every change between them.

The unit tests check the rules' shape; only the kernel (through libnftables'
JSON parser) can say whether it takes them. Each service shape (every
scheduler, with and without persistence, NAT with and without ports, DR, TUN,
fwmark and group services, IPv4 and IPv6) goes through the changes a checker
makes: three servers up, one, none, three with other weights, a weight 0, and
removal. Any refused apply is reported with the shape and the step.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pykeepalived.lab import Netns, unique_prefix
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


def test_every_layout_and_change_is_accepted_by_the_kernel() -> None:
    ns = Netns(unique_prefix("nftlay"))
    ns.create()
    try:
        proc = subprocess.run(ns.argv([sys.executable, script("nft_layouts.py")]), capture_output=True, text=True,
                              timeout=300)
    finally:
        ns.delete()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == []
