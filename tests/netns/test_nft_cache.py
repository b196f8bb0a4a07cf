"""libnftables' cache is emptied after each change (Libnftables.forget_cache), in a namespace of its own.

libnftables 1.0.6 keeps what it fetched for a command (512 KiB of hash
buckets per table) until the next command fetches it again; FORGET_CACHE is
a command that leaves it empty. The figure that shows it is glibc's heap in
use (mallinfo2) around the call, in a process of its own: the cache of two
tables is 1 MiB.
"""

from __future__ import annotations

import json

import pytest

from .vrrp_helpers import needs_root, script_in_fresh_namespace

pytestmark = [pytest.mark.netns, needs_root]

SCRIPT = """
import ctypes
import json
from pykeepalived.lvs.nft import Libnftables


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
nft = Libnftables()
tables = [{"add": {"table": {"family": family, "name": "pkcache"}}} for family in ("ip", "ip6")]
chains = [{"add": {"chain": {"family": family, "table": "pkcache", "name": "c"}}} for family in ("ip", "ip6")]
nft.run(tables + chains)
freed = []
for _ in range(3):
    nft.run([{"add": {"rule": {"family": "ip", "table": "pkcache", "chain": "c", "expr": [{"counter": None}]}}}],
            keep_cache=True)
    before = libc.mallinfo2().uordblks
    nft.forget_cache()
    freed.append(before - libc.mallinfo2().uordblks)
print(json.dumps({"freed": freed}))
"""


def test_forget_cache_frees_the_cache_of_every_table() -> None:
    freed = json.loads(script_in_fresh_namespace("nftcache", SCRIPT))["freed"]
    assert all(freed_bytes >= 900 * 1024 for freed_bytes in freed), freed  # two tables' 512 KiB each, every time
