"""The parent's side of the state model: its own "daemon" part, the children's parts, the state file.

`ParentState` fills Supervisor.store (state/store.py, docs/state.md): the
"daemon" part (pid, configuration file and digest, when it was loaded, each
child's pid and whether it runs, the last reload), each child's "state"
report as its part, and the timeline (state/timeline.py) derived from
successive parts, child starts and deaths, and reloads. A child that dies
keeps its last part, marked by `daemon.children.<name>.running` false, so
that status still shows what it last knew; a subsystem a reload stopped is
dropped whole.

`pykeepalived status` reads the document from a file beside the pid file
(`<pid file stem>.state.json`, root-owned 0600, replaced whole: host/
private_files.py), rewritten on every change but at most every
WRITE_INTERVAL_S (at scale, every ten times what a write takes). The file
names the parent's pid with its start time and boot id, so status tells a
running daemon from a stale file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from .. import __version__
from ..host.private_files import UnsafeFileError, write_private_parts
from ..host.proc import own_identity
from ..state.store import StateStore
from ..state.timeline import Timeline, event
from .child_report import Report
from .reload_result import ReloadResult

log = logging.getLogger("pykeepalived")

WRITE_INTERVAL_S = 0.2  # the state file is rewritten at most five times a second
WRITE_COST_FACTOR = 10  # ... and at most every ten times what the last write took: <= 10 % of a core
CHILD_KEYS = {"VRRP": "vrrp", "Healthcheck": "checker", "BFD": "bfd"}  # child name -> its key and part


def child_key(name: str) -> str:
    return CHILD_KEYS.get(name, name.lower())


class ParentState:
    """Keeps the store's "daemon" part and the children's parts; writes the state file (debounced)."""

    def __init__(self, store: StateStore, *, config_file: str | None = None, config_digest: str = "",
                 router_id: str | None = None, api: dict[str, Any] | None = None, state_file: str | None = None,
                 clock: Any = time.time) -> None:
        self.store = store
        self.clock = clock
        self.state_file = state_file
        self.timeline = Timeline()
        me = own_identity()
        now = clock()
        self.daemon: dict[str, Any] = {
            "pid": os.getpid(),
            "pid_start_ticks": me.start_ticks if me else None,  # with boot_id: tells this process from a later one
            "boot_id": me.boot_id if me else None,
            "version": __version__, "started_at": now, "running": True, "stopped_at": None,
            "router_id": router_id,
            "config_file": config_file, "config_digest": config_digest or None,
            "config_loaded_at": now if config_file else None,
            "children": {},
            "last_reload": None,
            "api": api,  # None when the API is off
            "snmp": {"enabled": False},
            "state_file": state_file,
        }
        self.writes = 0
        self._written_version = -1
        self._last_write = 0.0
        self._write_cost_s = 0.0  # what the last write took: writes of thousands of real servers are spaced out
        self._timer: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = store.subscribe(self._changed)
        self._publish()

    # ---------------------------------------------------------------- the daemon part
    def _publish(self) -> None:
        self.store.set_part("daemon", json.loads(json.dumps(self.daemon)))

    def snmp_started(self, socket: str, traps: bool) -> None:
        """daemon.snmp: the AgentX subagent runs (daemon/snmp_start.py)."""
        self.daemon["snmp"] = {"enabled": True, "socket": socket, "traps": traps}
        self._publish()

    def _child(self, name: str) -> dict[str, Any]:
        children: dict[str, dict[str, Any]] = self.daemon["children"]
        return children.setdefault(child_key(name), {"pid": None, "running": False, "started_at": None,
                                                     "restarts": 0, "last_alive_at": None, "last_exit": None})

    def child_started(self, name: str, pid: int) -> None:
        entry = self._child(name)
        if entry["started_at"] is not None:
            entry["restarts"] += 1
        now = self.clock()
        entry.update(pid=pid, running=True, started_at=now)
        if entry["restarts"]:
            self.store.add_event(event(now, "daemon", child_key(name), f"{name} child process restarted (pid {pid})"))
        self._publish()

    def child_ended(self, name: str, how: str) -> None:
        """The child died (its part is kept, marked not running)."""
        entry = self._child(name)
        entry.update(running=False, last_exit=how)
        self.store.add_event(event(self.clock(), "daemon", child_key(name), f"{name} child process {how}"))
        self._publish()

    def child_retired(self, name: str) -> None:
        """A reload stopped this subsystem: its part and its entry go."""
        key = child_key(name)
        self.daemon["children"].pop(key, None)
        self.timeline.forget(key)
        self.store.drop_part(key)
        self._publish()

    def on_state(self, name: str, report: Report) -> None:
        """A child's "state" report: its part replaces the last one; the timeline gets what is new in it."""
        now = self.clock()
        part = report.part
        derive = self.timeline.vrrp if part == "vrrp" else self.timeline.checker
        for ev in derive(report.data, now):
            self.store.add_event(ev)
        self._child(name)["last_alive_at"] = now
        self._publish()
        if report.text:
            self.store.set_part_text(part, report.text)  # kept as text (state/store.py); report.data goes
        else:
            self.store.set_part(part, report.data)

    def reloaded(self, result: ReloadResult, digest: str) -> None:
        now = self.clock()
        self.daemon["last_reload"] = {"at": result.finished, "ok": result.ok, "digest": result.digest or None,
                                      "problems": list(result.problems), "warnings": list(result.warnings),
                                      "children": dict(result.children)}
        if result.ok and digest and digest != self.daemon["config_digest"]:
            self.daemon["config_digest"] = digest
            self.daemon["config_loaded_at"] = now
        text = "configuration reloaded" if result.ok else \
            f"reload FAILED: {result.problems[0] if result.problems else 'see the log'}"
        self.store.add_event(event(result.finished, "reload", "config", text))
        self._publish()

    def set_config(self, digest: str) -> None:
        self.daemon["config_digest"] = digest or None
        self._publish()

    def stopped(self) -> None:
        """The daemon stops: every child not running, the file written one last time at once."""
        now = self.clock()
        self.daemon.update(running=False, stopped_at=now)
        for entry in self.daemon["children"].values():
            entry["running"] = False
        self._publish()
        self._unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.write()

    # ---------------------------------------------------------------- the state file
    def start(self) -> None:
        """Write the file from now on (needs the running loop for the debounce)."""
        self._loop = asyncio.get_running_loop()
        self.write()

    def _changed(self, version: int) -> None:
        if self._loop is None or self._timer is not None or not self.state_file:
            return
        wait = self._last_write + max(WRITE_INTERVAL_S, WRITE_COST_FACTOR * self._write_cost_s) - time.monotonic()
        if wait <= 0:
            self._timer = self._loop.call_soon(self._due)
        else:
            self._timer = self._loop.call_later(wait, self._due)

    def _due(self) -> None:
        self._timer = None
        self.write()

    def write(self) -> None:
        if not self.state_file or self.store.version == self._written_version:
            return
        started = self._last_write = time.monotonic()
        self._written_version = self.store.version
        try:
            write_private_parts(self.state_file, self.store.text_pieces(written_at=time.time()))
            self.writes += 1
        except UnsafeFileError as exc:
            log.warning("state file not written: %s", exc)
        self._write_cost_s = time.monotonic() - started
