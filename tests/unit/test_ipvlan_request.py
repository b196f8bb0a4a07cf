"""The RTM_NEWLINK request net/ipvlan.py builds for use_ipvlan, read back with pyroute2's decoder."""

from __future__ import annotations

import struct

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # type: ignore[import-untyped]

from pykeepalived.net.ipvlan import IFF_UP, NLM_F_CREATE, NLM_F_EXCL, RTM_NEWLINK, newlink_request


def _decode(raw: bytes) -> tuple[ifinfmsg, bytes]:
    msg = ifinfmsg(raw)
    msg.decode()
    return msg, raw


@pytest.mark.parametrize(("flags", "master"), [(0, None), (1, None), (2, 7)])
def test_newlink_request_as_keepalived_sends_it(flags: int, master: int | None) -> None:
    raw = newlink_request("vrrp.56", 3, flags, master, 42)
    msg, _ = _decode(raw)
    length, kind, nl_flags, seq, _ = struct.unpack_from("=IHHII", raw)
    assert (length, kind, seq) == (len(raw), RTM_NEWLINK, 42)
    assert nl_flags & (NLM_F_CREATE | NLM_F_EXCL) == NLM_F_CREATE | NLM_F_EXCL
    assert msg["flags"] == IFF_UP and msg["change"] == IFF_UP
    assert msg.get_attr("IFLA_IFNAME") == "vrrp.56"
    assert msg.get_attr("IFLA_LINK") == 3
    assert msg.get_attr("IFLA_MASTER") == master
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "ipvlan"
    data = info.get_attr("IFLA_INFO_DATA")
    assert data.get_attr("IFLA_IPVLAN_MODE") == 0  # L2
    # pyroute2 does not know IFLA_IPVLAN_FLAGS (type 2): find it in the raw data attributes
    assert struct.pack("=HHH", 6, 2, flags) in raw
