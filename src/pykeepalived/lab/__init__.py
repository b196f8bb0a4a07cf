"""The lab: hosts as network namespaces on one L2 segment, and real VRRP peers.

Used by the netns tests, by benchmarks and by `pykeepalived lab`; everything it
creates is removed again by `close()` (or leaving the `with` block), even after
a failure half-way through.
"""

from __future__ import annotations

from pykeepalived.lab.netns import LabError, Netns
from pykeepalived.lab.peers import (
    FrrPeer,
    KeepalivedPeer,
    PyKeepalivedPeer,
    VrrpPeer,
    VrrpSettings,
    render_frr_vrrpd_conf,
    render_keepalived_conf,
    wait_until,
)
from pykeepalived.lab.topology import Host, Lan, unique_prefix

__all__ = [
    "FrrPeer",
    "Host",
    "KeepalivedPeer",
    "LabError",
    "Lan",
    "Netns",
    "PyKeepalivedPeer",
    "VrrpPeer",
    "VrrpSettings",
    "render_frr_vrrpd_conf",
    "render_keepalived_conf",
    "unique_prefix",
    "wait_until",
]
