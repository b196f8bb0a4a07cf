"""The whole view the subagent serves: the MIBs the settings switch on, from one state document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .agentx import Oid
from .mib_keepalived import CHECK, GLOBAL, VRRP, check_rows, global_rows, vrrp_rows
from .mib_vrrpv3 import VRRPV3, vrrpv3_rows
from .rows import Interfaces
from .settings import SnmpSettings
from .view import MibView


def roots(settings: SnmpSettings) -> list[Oid]:
    """The subtrees registered with the master agent, in this order."""
    found: list[Oid] = []
    if settings.vrrp or settings.checker:
        found.append(GLOBAL)
    if settings.vrrp:
        found.append(VRRP)
    if settings.checker:
        found.append(CHECK)
    if settings.rfcv3:
        found.append(VRRPV3)
    return found


def build_view(doc: Mapping[str, Any], settings: SnmpSettings, interfaces: Interfaces, now: float) -> MibView:
    rows = []
    if settings.vrrp or settings.checker:
        rows += global_rows(doc)
    if settings.vrrp:
        rows += vrrp_rows(doc)
    if settings.checker:
        rows += check_rows(doc)
    if settings.rfcv3:
        rows += vrrpv3_rows(doc, interfaces, now)
    return MibView(rows, roots(settings))
