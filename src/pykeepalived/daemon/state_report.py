"""A child's feed of its state part to the parent (the "state" report of daemon/child_report.py).

Each VRRP and checker child sends its whole part of the state model
(docs/state.md) over its report pipe. What matters to an operator goes at
once: every POLL_S the feed compares a cheap fingerprint (VRRP: each
instance's state, effective priority, master address, the transition log;
checker: the desired table, whether it is applied, the data-plane error, the
health log, the runtime overrides) and sends a fresh part when it moved. The
rest (advert counters, connection counts) goes at most every
COUNTERS_INTERVAL_S, and only when the part differs from the last one sent.
At scale both waits grow with what a part costs (StateFeed): at 6,000 real
servers the whole part every second cost more than the checks themselves.

Connection counts cost a walk of the kernel's connection table (conntrack
with nftables, which grows with the traffic), so the checker's feed asks the
data plane for them only as often as the counters go (every
COUNTS_INTERVAL_S at least), only while a parent listens (the report pipe
exists), and stops asking once the data plane says it has no counters at all
(`none`). A load-based scheduler's rebalancer refreshes them
every second anyway; the feed then reuses its figures.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .child_report import ChildReporter

if TYPE_CHECKING:
    from ..check.service import CheckService
    from ..vrrp.service import VrrpService

log = logging.getLogger("pykeepalived")

POLL_S = 0.1  # how soon a change that matters reaches the parent
COUNTERS_INTERVAL_S = 1.0  # counters and other figures: at most this often
COUNTS_INTERVAL_S = 2.0  # the conntrack/IPVS walk for connection counts: at most this often
# ... and at scale less often, so that the feed's own cost stays small (bench/checks.py --pk-daemon: at 6,000
# real servers a part cost the child about 0.1 s and the parent as much again, each second):
COUNTERS_COST_FACTOR = 200  # counters wait at least this many times what the last part cost: <= 0.5 % of a core
CHANGE_COST_FACTOR = 10  # changes that matter, one after another: <= 10 % of a core while they stream in
_COMPACT = json.JSONEncoder(separators=(",", ":"))


class StateFeed:
    """Sends `build()` as `part` whenever `fingerprint()` moves, else at most every COUNTERS_INTERVAL_S if changed.

    Both waits grow with what a part costs to build and send (`cost_s`): a
    change that matters still goes at the next look after a quiet spell, but
    a stream of them goes at most every CHANGE_COST_FACTOR x cost_s, and the
    counters of thousands of real servers wait COUNTERS_COST_FACTOR x cost_s.
    """

    def __init__(self, reporter: ChildReporter, part: str, build: Callable[[], dict[str, Any]] | None,
                 fingerprint: Callable[[], object], before: Callable[[], Any] | None = None,
                 timer: Callable[[], float] = time.perf_counter,
                 build_text: Callable[[], tuple[float | None, list[bytes]]] | None = None) -> None:
        self.reporter = reporter
        self.part = part
        self.build = build
        self.fingerprint = fingerprint
        self.before = before  # an async refresh run before each look (the checker's counts)
        self.timer = timer  # what a part's cost is measured with
        # the part as the line carries it, (updated_at, the rest as compact JSON in pieces): `build` encoded,
        # unless the builder writes the text itself (the checker's, a batch of real servers at a time)
        self.build_text = build_text or self._encoded
        self.sent = 0
        self.cost_s = 0.0  # what the last part took to build, encode and send (wall time)
        self._last_digest: bytes | None = None  # the last part sent, encoded without its updated_at: its digest
        self._last_fp: object = None
        self._last_at = float("-inf")

    def _encoded(self) -> tuple[float | None, list[bytes]]:
        assert self.build is not None, "a feed has build or build_text"
        part = self.build()
        updated_at = part.pop("updated_at", None)
        return updated_at, [_COMPACT.encode(part).encode()]

    @property
    def counters_interval_s(self) -> float:
        return max(COUNTERS_INTERVAL_S, COUNTERS_COST_FACTOR * self.cost_s)

    def look(self, now: float) -> bool:
        """Send the part if it must go now; True if it was sent."""
        fp = self.fingerprint()
        wait = CHANGE_COST_FACTOR * self.cost_s if fp != self._last_fp else self.counters_interval_s
        if now - self._last_at < wait:
            return False
        self._last_fp = fp
        self._last_at = now
        started = self.timer()
        updated_at, pieces = self.build_text()
        hashed = hashlib.blake2b(digest_size=32)
        for piece in pieces:
            hashed.update(piece)
        digest = hashed.digest()
        sent = digest != self._last_digest
        if sent:
            self._last_digest = digest
            self.reporter.state_text(self.part, updated_at, pieces)
            self.sent += 1
        self.cost_s = self.timer() - started
        return sent

    async def run(self) -> None:
        while True:
            try:
                if self.before is not None:
                    await self.before()
                self.look(time.monotonic())
            except Exception:  # the feed is informative: a bug here must never stop the service
                log.exception("state report to the parent failed")
                await asyncio.sleep(COUNTERS_INTERVAL_S)
            await asyncio.sleep(POLL_S)


def vrrp_feed(service: VrrpService, reporter: ChildReporter) -> StateFeed:
    from ..vrrp.state_view import fingerprint, vrrp_part

    started = time.time()

    def groups() -> list[tuple[str, Any, tuple[str, ...]]]:
        out = []
        for name, group in service.config.sync_groups.items():
            if name in service.core.group_names:
                members = tuple(r.name for r in group.members if r.name in service.machines)
                out.append((name, service.core.group_state(name), members))
        return out

    def build() -> dict[str, Any]:
        return vrrp_part(service.settings, service.machines, groups(), service.transitions,
                         maintenance=service.runtime.maintenance, started_at=started, now=time.time())

    def fp() -> object:
        return fingerprint(service.settings, service.machines, service.transitions, service.runtime.maintenance)

    return StateFeed(reporter, "vrrp", build, fp)


class _CountsWalk:
    """When the checker's feed last asked for connection counts, and whether the data plane has any."""

    def __init__(self) -> None:
        self.at = float("-inf")
        self.has_counters = True
        self.seen: float | None = None  # counts_at of the counts the rates have taken


def checker_feed(service: CheckService, reporter: ChildReporter) -> StateFeed:
    from ..check.state_view import Rates, checker_part_pieces, totals

    rates = Rates()
    walk = _CountsWalk()
    feeds: list[StateFeed] = []  # the feed made below: its counters' interval paces the walk too

    async def refresh() -> None:
        now = time.monotonic()
        every_s = max(COUNTS_INTERVAL_S, feeds[0].counters_interval_s) if feeds else COUNTS_INTERVAL_S
        if walk.has_counters and now - walk.at >= every_s:
            walk.at = now
            if service.counts_at is None or time.time() - service.counts_at >= COUNTS_INTERVAL_S:
                await service.refresh_counts()
            if service.counts_at is None:
                walk.has_counters = False  # this data plane has no counters: never walk again
        if service.counts_at is not None and service.counts_at != walk.seen:
            walk.seen = service.counts_at
            rates.update(totals(service.counts), service.counts_at)

    def build_text() -> tuple[float | None, list[bytes]]:  # state_view.checker_part, in pieces
        quorums = {svc.plan.name: svc.pool.quorum for svc in service.services}
        has_counts = service.counts_at is not None
        return time.time(), checker_part_pieces(
            service.status_head(), service.status_services(), service.table, quorums=quorums,
            history=service.health_log, runtime=service.runtime, counts=service.counts if has_counts else None,
            counts_at=service.counts_at, rates=rates.rates)

    def fp() -> object:
        rt = service.runtime
        return (id(service.table), service.applied is service.table, service.dataplane_error,
                service.health_log.version, tuple(sorted(rt.drained)), tuple(sorted(rt.weights.items())),
                tuple(sorted(rt.out)))

    feeds.append(StateFeed(reporter, "checker", None, fp, before=refresh, build_text=build_text))
    return feeds[0]


_feeds: set[asyncio.Task[None]] = set()  # held here: the loop keeps only weak references to tasks


def _start(feed: StateFeed) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(feed.run())
    _feeds.add(task)
    task.add_done_callback(_feeds.discard)
    return task


def start_vrrp(service: VrrpService, reporter: ChildReporter) -> asyncio.Task[None] | None:
    """The VRRP child's feed, until the loop ends; None without a parent to tell (-P alone)."""
    return _start(vrrp_feed(service, reporter)) if reporter.fd >= 0 else None


def start_checker(service: CheckService, reporter: ChildReporter) -> asyncio.Task[None] | None:
    """The checker child's feed, until the loop ends; None without a parent to tell (-C alone)."""
    return _start(checker_feed(service, reporter)) if reporter.fd >= 0 else None
