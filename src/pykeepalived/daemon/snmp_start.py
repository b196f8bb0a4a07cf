"""Starting the SNMP subagent in the parent: -x / -A and the global_defs keywords decide (snmp/settings.py).

Kept out of supervisor.py so that the parent only calls `start_snmp` and
`stop()`; a config without SNMP imports nothing of the snmp package's shell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..config.model import KeepalivedConfig
from ..errors import PyKeepalivedError
from ..state.store import StateStore

log = logging.getLogger("pykeepalived")


async def start_snmp(store: StateStore, config_of: Callable[[], KeepalivedConfig | None], snmp_flag: bool,
                     socket_flag: str | None) -> Any:
    """The running subagent, or None when nothing asks for SNMP (or its socket address is unusable).

    `config_of` gives the configuration in force: the one read at start decides whether SNMP runs (as in
    keepalived, a reload does not start or stop it); the rows follow reloads.
    """
    from ..snmp.settings import snmp_settings

    config = config_of()
    if config is None:
        return None
    settings = snmp_settings(config.global_defs, snmp_flag, socket_flag)
    if not settings.enabled:
        return None
    from ..snmp.subagent import SnmpSubagent

    agent = SnmpSubagent(store, settings, config=config_of)
    try:
        await agent.start()
    except PyKeepalivedError as exc:
        log.error("SNMP: %s; no SNMP subagent", exc)
        return None
    return agent
