"""The AgentX subagent in the parent's event loop: connects to snmpd, serves the state store, sends traps.

It runs in the parent, never in the VRRP process, so a slow or absent snmpd
cannot delay an advert. Each connection: Open, Register each subtree, then
answer requests from a view of `StateStore.snapshot()` rebuilt only when the
store's version moved (or the interface facts are stale). A ping every
`ping_interval_s` notices a master that went away without closing; a lost
connection is retried with a backoff of 1 s doubling up to 30 s, so snmpd
can restart at any time. Traps (enable_traps) are computed from each new
document against the previous one (traps.py) and also added to the store's
event timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from ..config.model import KeepalivedConfig
from ..state.store import StateStore
from .agentx import CloseReason
from .interfaces import interface_facts
from .mib import build_view, roots
from .rows import InterfaceFacts
from .session import Session
from .settings import SnmpSettings, parse_socket
from .traps import check_traps, state_traps
from .view import MibView

log = logging.getLogger("pykeepalived")

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 30.0
PING_INTERVAL_S = 15.0
MAX_UNANSWERED_PINGS = 3
FACTS_TTL_S = 5.0

FactsLookup = Callable[[Iterable[str]], Mapping[str, InterfaceFacts]]
ConfigOf = Callable[[], "KeepalivedConfig | None"]


class SnmpSubagent:
    def __init__(self, store: StateStore, settings: SnmpSettings, facts: FactsLookup = interface_facts,
                 ping_interval_s: float = PING_INTERVAL_S, config: ConfigOf = lambda: None) -> None:
        self.store = store
        self.config = config  # the configuration in force (it changes on reload): the settings columns
        self.settings = settings
        self.facts_lookup = facts
        self.ping_interval_s = ping_interval_s
        self.started = time.monotonic()
        self.connections = 0
        self.malformed = 0
        self.traps_sent = 0
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._session: Session | None = None
        self._view: tuple[int, float, MibView] | None = None
        self._facts: tuple[float, Mapping[str, InterfaceFacts]] = (-FACTS_TTL_S, {})
        self._previous = store.snapshot()
        self._unsubscribe: Callable[[], None] | None = None
        self._trap_check_pending = False

    # ---------------------------------------------------------------- life cycle
    async def start(self) -> None:
        parse_socket(self.settings.socket)  # a bad address is an error now, not a retry loop
        self._unsubscribe = self.store.subscribe(self._on_change)
        self._task = asyncio.get_running_loop().create_task(self._keep_connected())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._session is not None and self._writer is not None and self._session.ready:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(self._session.closing(CloseReason.SHUTDOWN))
                await asyncio.wait_for(self._writer.drain(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._task, 5.0)

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.ready and self._session.registered > 0

    # ---------------------------------------------------------------- connection
    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kind, where = parse_socket(self.settings.socket)
        if kind == "unix":
            return await asyncio.open_unix_connection(str(where))
        return await asyncio.open_connection(kind[4:], int(where))

    async def _keep_connected(self) -> None:
        delay = FIRST_RETRY_S
        logged = False
        while True:
            try:
                reader, writer = await self._connect()
            except OSError as exc:
                if not logged:
                    log.warning("SNMP: cannot reach the AgentX master at %s (%s); retrying", self.settings.socket,
                                exc.strerror or exc)
                    logged = True
                await asyncio.sleep(delay)
                delay = min(MAX_RETRY_S, delay * 2)
                continue
            logged = False
            self.connections += 1
            try:
                registered = await self._serve(reader, writer)
            except (OSError, asyncio.IncompleteReadError) as exc:
                log.warning("SNMP: the AgentX connection broke (%s); reconnecting", exc)
                registered = False
            finally:
                self._writer = self._session = None
                writer.close()
                with contextlib.suppress(OSError, asyncio.TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
            if registered:
                delay = FIRST_RETRY_S
            await asyncio.sleep(delay)
            delay = min(MAX_RETRY_S, delay * 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One session, until the master closes it or stops answering; True if it got registered."""
        session = Session(roots(self.settings))
        self._session, self._writer = session, writer
        writer.write(session.opening())
        await writer.drain()
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.ping_interval_s
        was_ready = False
        while not session.closed:
            try:
                data = await asyncio.wait_for(reader.read(65536), max(0.0, next_ping - loop.time()))
            except asyncio.TimeoutError:
                if session.pings_unanswered >= MAX_UNANSWERED_PINGS:
                    log.warning("SNMP: the AgentX master stopped answering pings; reconnecting")
                    break
                if session.ready:
                    writer.write(session.ping())
                    await writer.drain()
                next_ping = loop.time() + self.ping_interval_s
                continue
            if not data:
                log.warning("SNMP: the AgentX master closed the connection; reconnecting")
                break
            replies = session.receive(data, self._current_view, self._uptime_cs())
            for problem in session.problems:
                log.warning("SNMP: %s", problem)
            session.problems.clear()
            self.malformed = session.framer.malformed
            if replies:
                writer.write(b"".join(replies))
                await writer.drain()
            if session.registered and not was_ready:
                was_ready = True
                log.info("SNMP: AgentX subagent registered with the master at %s", self.settings.socket)
        return was_ready

    # ---------------------------------------------------------------- the view
    def _uptime_cs(self) -> int:
        return int((time.monotonic() - self.started) * 100) & 0xFFFFFFFF

    def _interfaces(self, doc: Mapping[str, object]) -> Mapping[str, InterfaceFacts]:
        at, facts = self._facts
        now = time.monotonic()
        if now - at < FACTS_TTL_S:
            return facts
        vrrp = doc.get("vrrp")
        instances = vrrp.get("instances") if isinstance(vrrp, dict) else None
        names = {i.get("interface") for i in instances or [] if isinstance(i, dict)}
        for inst in instances or []:  # a VIP's own `dev` too (vrrpAddressIfIndex)
            for vip in (inst.get("vips") or []) + (inst.get("excluded_vips") or []) if isinstance(inst, dict) else []:
                words = str(vip).split()
                if "dev" in words[:-1]:
                    names.add(words[words.index("dev") + 1])
        try:
            facts = self.facts_lookup(n for n in names if isinstance(n, str))
        except OSError as exc:
            log.warning("SNMP: cannot read the interfaces (%s)", exc)
            facts = {}
        self._facts = (now, facts)
        return facts

    def _current_view(self) -> MibView:
        now = time.monotonic()
        if self._view is not None and self._view[0] == self.store.version and now - self._view[1] < 1.0:
            return self._view[2]
        doc = self.store.snapshot()
        try:
            view = build_view(doc, self.settings, self._interfaces(doc), time.time(), self.config())
        except (ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
            # a document this code does not expect must not take SNMP down: serve what was served before
            log.warning("SNMP: cannot build the MIB view (%s: %s)", type(exc).__name__, exc)
            return self._view[2] if self._view is not None else MibView([], roots(self.settings))
        self._view = (self.store.version, now, view)
        return view

    # ---------------------------------------------------------------- traps
    def _on_change(self, version: int) -> None:
        if not self.settings.traps or self._trap_check_pending:
            return
        self._trap_check_pending = True
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to send with
            asyncio.get_running_loop().call_soon(self._send_traps)
            return
        self._trap_check_pending = False

    def _send_traps(self) -> None:
        self._trap_check_pending = False
        doc = self.store.snapshot()
        previous, self._previous = self._previous, doc
        traps = [*state_traps(previous, doc, self.settings, self._interfaces(doc), self.config()),
                 *check_traps(previous, doc, self.settings)]
        for trap in traps:
            sent = self.connected and self._writer is not None and self._session is not None
            if sent:
                assert self._writer is not None and self._session is not None
                self._writer.write(self._session.notify(trap.varbinds))
                self.traps_sent += 1
            self.store.add_event({"at": time.time(), "kind": "snmp", "subject": trap.subject,
                                  "text": f"trap {trap.name} {'sent' if sent else 'not sent: no AgentX master'}"})
