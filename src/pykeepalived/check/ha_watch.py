"""ha_suspend in the checker process: watch this host's addresses, hold back the suspended checkers.

The decisions are check/ha_suspend.py's; this polls the interfaces' addresses
(one rtnetlink dump every HA_POLL_S; keepalived reacts to each netlink address
event) and logs keepalived's lines ("Suspending healthchecker for service RS
for VS VS", "Activating ...", and "Deactivating ..." for those suspended at
start). A checker loop calls `wait_runs` before each attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config.model import KeepalivedConfig, VirtualServer
from .ha_suspend import SuspendRules

if TYPE_CHECKING:  # pyroute2 (tens of MiB in every checker process) loads only when ha_suspend is used
    from ..net.local_addresses import LocalAddresses

HA_POLL_S = 0.25
log = logging.getLogger("pykeepalived.check")


class HaSuspendWatch:
    def __init__(self, services: Mapping[str, VirtualServer], checkers: Mapping[str, list[str]],
                 config: KeepalivedConfig, quiet: bool = False) -> None:
        self.rules = SuspendRules.build(services, config)
        self.quiet = quiet  # a checker worker: the checker process logs the same changes
        self.checkers = checkers  # service name -> the real server of each of its checkers
        self._events = {name: asyncio.Event() for name in self.rules.ranges}
        self._config = config
        self._addresses_: LocalAddresses | None = None

    @property
    def _addresses(self) -> LocalAddresses:
        if self._addresses_ is None:
            from ..net.local_addresses import LocalAddresses
            from ..net.netlink_bufs import checker_addresses_rcvbuf

            self._addresses_ = LocalAddresses(checker_addresses_rcvbuf(self._config.global_defs))  # lvs_netlink_*
        return self._addresses_

    @property
    def active(self) -> bool:
        return bool(self.rules.ranges)

    async def start(self) -> None:
        """The first look, before any checker runs: suspended services say so once."""
        await self._addresses.open()
        for name, runs in self.rules.update(await self._addresses.dump()):
            self._set(name, runs, "Activat" if runs else "Deactivat")

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(HA_POLL_S)
                try:
                    local = await self._addresses.dump()
                except Exception as exc:  # keep the last verdicts; try again next time
                    log.warning("ha_suspend: %s", exc)
                    continue
                for name, runs in self.rules.update(local):
                    self._set(name, runs, "Activat" if runs else "Suspend")
        finally:
            if self._addresses_ is not None:
                self._addresses_.close()

    def _set(self, name: str, runs: bool, verb: str) -> None:
        for rs in [] if self.quiet else self.checkers.get(name, []):
            log.info("%sing healthchecker for service %s for VS %s", verb, rs, name)
        if runs:
            self._events[name].set()
        else:
            self._events[name].clear()

    def runs(self, name: str) -> bool:
        """Whether the service's checkers may run now (the probe engine asks before each attempt)."""
        event = self._events.get(name)
        return event is None or event.is_set()

    async def wait_runs(self, name: str) -> None:
        event = self._events.get(name)
        if event is not None:
            await event.wait()


def watch_for(services: list[Any], config: KeepalivedConfig, quiet: bool = False) -> HaSuspendWatch:
    """The watch for the checker service's ServiceStates (their plans name the VS and its real servers)."""
    return HaSuspendWatch({s.plan.name: s.plan.config for s in services},
                          {s.plan.name: [srv.plan.name for srv in s.servers.values() for _ in srv.checkers]
                           for s in services}, config, quiet)
