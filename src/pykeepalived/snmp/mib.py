"""The whole view the subagent serves: the MIBs the settings switch on, from one state document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.model import KeepalivedConfig
from .agentx import Oid
from .mib_checker_config import checker_config_rows
from .mib_config import config_rows, global_config_rows, vrrp2_config_rows, vrrpv3_config_rows
from .mib_keepalived import CHECK, GLOBAL, VRRP, check_rows, global_rows, vrrp_rows
from .mib_vrrp2 import VRRP_MIB, vrrp2_rows
from .mib_vrrpv3 import VRRPV3, vrrpv3_rows
from .rows import Interfaces, dicts, integer, keep, part
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
    if settings.rfcv2:
        found.append(VRRP_MIB)
    if settings.rfcv3:
        found.append(VRRPV3)
    return found


TRAP_ENABLE: Oid = GLOBAL + (4, 0)


def build_view(doc: Mapping[str, Any], settings: SnmpSettings, interfaces: Interfaces, now: float,
               config: KeepalivedConfig | None = None) -> MibView:
    """`config` (the configuration in force) adds the settings columns of the VRRP tables (mib_config.py)."""
    rows = []
    if settings.vrrp or settings.checker:
        rows += global_rows(doc)
        rows += keep(integer(TRAP_ENABLE, 1 if settings.traps else 2))
        if config is not None:
            rows += global_config_rows(config)
    if settings.vrrp:
        rows += vrrp_rows(doc, interfaces)
        if config is not None:
            vrrp = part(doc, "vrrp")
            rows += config_rows(config, [str(i.get("name")) for i in dicts(vrrp.get("instances"))],
                                [str(g.get("name")) for g in dicts(vrrp.get("sync_groups"))])
    if settings.checker:
        rows += check_rows(doc)
        if config is not None:
            rows += checker_config_rows(config, doc)
    if settings.rfcv2:
        rows += vrrp2_rows(doc, interfaces, settings.traps)
        if config is not None:
            rows += vrrp2_config_rows(config, doc, interfaces)
    if settings.rfcv3:
        rows += vrrpv3_rows(doc, interfaces, now)
        if config is not None:
            rows += vrrpv3_config_rows(config, doc, interfaces)
    return MibView(rows, roots(settings))
