"""The checker's side of pykeepalived_bgp: its speaker, and what it should announce now.

The checker process owns the tier's announcements because it alone knows
both conditions of bgp/announce.py at the moment they change: each virtual
server's quorum (its pools) and whether the data plane has applied the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..bgp.announce import ServiceHealth, wanted
from ..bgp.frr_conf import render_bgpd_conf
from ..bgp.speaker import BgpSpeakerService
from ..config.bgp_checks import service_ranges
from ..config.model import KeepalivedConfig, VirtualServer


def speaker_for(config: KeepalivedConfig, status_path: str | None) -> BgpSpeakerService | None:
    """The speaker of the config's pykeepalived_bgp block (None without one).

    Its directory sits next to the status file, so a checker started again
    finds (and kills) a bgpd its killed predecessor left; without a status
    file it is a fresh temporary directory.
    """
    if config.bgp is None:
        return None
    run_dir = str(Path(status_path).with_name(Path(status_path).name + ".bgp")) if status_path else None
    name = config.global_defs.router_id or "pykeepalived"
    return BgpSpeakerService(config.bgp, run_dir, name=name.replace(" ", "_"))


def wanted_now(config: KeepalivedConfig, services: Iterable[tuple[VirtualServer, bool]],
               dataplane_ok: bool) -> frozenset[str]:
    """The prefixes to announce, from each virtual server's (config, has quorum)."""
    if config.bgp is None:
        return frozenset()
    health = [ServiceHealth(tuple(service_ranges(vs, config)), quorum) for vs, quorum in services]
    return wanted(config.bgp.announce, health, dataplane_ok)


def same_sessions(old: KeepalivedConfig, new: KeepalivedConfig) -> bool:
    """A reload keeps the running bgpd when only what is announced changed (sessions, policy and AS the same)."""
    if old.bgp is None or new.bgp is None:
        return old.bgp is new.bgp
    return _sessions(old) == _sessions(new)


def _sessions(config: KeepalivedConfig) -> tuple[object, ...]:
    assert config.bgp is not None
    return (render_bgpd_conf(config.bgp), config.bgp.bgpd_path)
