"""Shared pieces of the netns tests: peer factories, the 'exactly one holder' checks, a script in a namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import (
    FrrPeer,
    KeepalivedPeer,
    Lan,
    Netns,
    PyKeepalivedPeer,
    VrrpPeer,
    VrrpSettings,
    unique_prefix,
    wait_until,
)
from pykeepalived.lab.topology import Host

VIP4 = ip_interface("192.0.2.100/24")
VIP6 = ip_interface("2001:db8::100/64")

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 for network namespaces"
)
HAVE_KEEPALIVED = shutil.which("keepalived") is not None


def script_in_fresh_namespace(tag: str, script: str, timeout_s: float = 60.0) -> str:
    """Run a Python `script` in a namespace of its own (its last stdout line is what it found), then remove it.

    The script's output, asserting that it exited 0 (its stderr's end otherwise).
    """
    ns = Netns(unique_prefix(tag))
    ns.create()
    try:
        proc = subprocess.run(ns.argv([sys.executable, "-c", script]), capture_output=True, text=True,
                              timeout=timeout_s)
    finally:
        ns.delete()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
HAVE_FRR = Path("/usr/lib/frr/vrrpd").exists() and shutil.which("vtysh") is not None


def skip_unless_available(kind: str) -> None:
    if kind == "ka" and not HAVE_KEEPALIVED:
        pytest.skip("keepalived not installed")
    if kind == "frr" and not HAVE_FRR:
        pytest.skip("FRR vrrpd not installed")


class Lab:
    """A Lan with r1, r2 and a client c, and the peers a test started (all closed at the end)."""

    def __init__(self, lan: Lan, workdir: Path) -> None:
        self.lan = lan
        self.workdir = workdir
        self.r1 = lan.add_host("r1", 11)
        self.r2 = lan.add_host("r2", 12)
        self.c = lan.add_host("c", 50)
        self.peers: list[VrrpPeer] = []

    def peer(self, kind: str, host: Host, settings: list[VrrpSettings], extra_global: str = "") -> VrrpPeer:
        skip_unless_available(kind)
        peer: VrrpPeer
        if kind == "py":
            peer = PyKeepalivedPeer(host, settings, self.workdir, extra_global=extra_global)
        elif kind == "ka":
            peer = KeepalivedPeer(host, settings, self.workdir, extra_global=extra_global)
        elif kind == "frr":
            peer = FrrPeer(host, settings, self.workdir)
        else:
            raise ValueError(kind)
        self.peers.append(peer)
        return peer

    def close(self) -> None:
        for peer in self.peers:
            print(f"===== {peer!r} =====\n{peer.log()[-5000:]}")
            try:
                peer.close()
            except Exception as exc:  # keep closing the others
                print(f"close {peer!r}: {exc}")


def lab_fixture(tmp_path: Path, tag: str) -> Iterator[Lab]:
    with Lan(unique_prefix(tag)) as lan:
        lab = Lab(lan, tmp_path)
        try:
            yield lab
        finally:
            lab.close()


def vips_for(family: int) -> list[IPv4Interface | IPv6Interface]:
    return [VIP4] if family == 4 else [VIP6]  # type: ignore[list-item]


def advert_for(version: int) -> float:
    return 1.0 if version == 2 else 0.1


def down_interval(version: int, priority: int = 100) -> float:
    adv = advert_for(version)
    skew = (256 - priority) / 256 * (1.0 if version == 2 else adv)
    return 3 * adv + skew


def holders(peers: list[VrrpPeer], vip: IPv4Interface | IPv6Interface) -> list[VrrpPeer]:
    return [p for p in peers if p.holds(vip.ip)]


def wait_sole_holder(expected: VrrpPeer, others: list[VrrpPeer], vip: IPv4Interface | IPv6Interface,
                     timeout_s: float, settle_s: float) -> float:
    """Wait until `expected` holds the VIP and nobody else does, then check it stays so for settle_s."""
    took = wait_until(lambda: expected.holds(vip.ip) and not any(o.holds(vip.ip) for o in others), timeout_s,
                      what=f"{expected!r} sole holder of {vip.ip}")
    end = time.monotonic() + settle_s
    while time.monotonic() < end:
        assert expected.holds(vip.ip), f"{expected!r} lost {vip.ip}"
        assert not any(o.holds(vip.ip) for o in others), f"two holders of {vip.ip}"
        time.sleep(0.05)
    return took
