"""Checker worker processes: the probes of a big config spread over several cores.

With the probe engine (engine.py) one process checks 6,000 real servers a
second with about half a core; a config past what one core can check can ask
for more with `--checker-workers N`: the checker process then starts `count` workers (`pykeepalived --checker-worker
N/COUNT --config-fd N --parent-pid PID`), each of which builds the same plan
from the same configuration (the memfd the daemon read it into, through
/proc/PID/fd/N: never the file as it is now, see host/recording.py) and runs
the probes and verdict cores of every checker whose index i has
i % COUNT == N. The main process keeps the pools, notifies, the table, the
status file and the FILE_CHECKs (which act at once), and stays responsive. Workers report on stdout, one JSON line each:

    {"i": 17, "ok": false, "v": "down", "f": 2, "c": false, "o": null, "r": "refused"}   a decision
    {"i": 17, "ok": true, "v": null, "o": 5, "r": ""}                                   a new weight offset
    {"s": [[17, attempts, last_ok, "reason", next_in_s], ...]}                         once a second

Before it starts, a worker reads one line on stdin from the checker process:
the fingerprint of the plan (which checker each index is) and the state of
its checkers (verdict, retry count, next check). A worker whose own plan
differs refuses to start. A reload (check/service.py) replaces the
configuration memfd the workers read (check/reload_snapshot.py), stops the
workers and starts new ones with the state the checker process kept: the
workers run the new configuration, the verdicts and timings carry over.

A worker exits when its stdin closes (the main process is gone) or on
SIGTERM, which the kernel sends it when the checker process dies, however it
dies (PR_SET_PDEATHSIG, set first thing by `--parent-pid`: daemon/lifeline.py).
The main process treats a worker's death as its own failure and exits, so
that the supervisor restarts the whole checker cleanly rather than mixing
fresh worker state with old pool state.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import sys
from typing import Any

from ..errors import PyKeepalivedError
from .ha_watch import watch_for
from .logic import Change, Verdict
from .probe import ProbeResult
from .engine import Job, ProbeEngine, notrack_mark, runs_here, syn_probes
from .running import attempt

log = logging.getLogger("pykeepalived.check")



class WorkerStartError(PyKeepalivedError):
    """A worker's plan is not its checker process's (the configuration changed between the two reads)."""

STATS_INTERVAL_S = 1.0


def worker_count(requested: int | None = None) -> int:
    """How many processes share the probes: as asked (--checker-workers), else one: the checker process itself.

    With the probe engine (engine.py) one process checks 6,000 servers a
    second at about half a core (bench/checks.py), and each worker process
    costs tens of MiB (the package, the configuration, the plan): workers are
    for configs past what one core can check, on request.
    """
    if requested is not None:
        return max(1, requested)
    return 1


def parse_shard(text: str) -> tuple[int, int]:
    """`N/COUNT` from the command line."""
    try:
        shard, count = (int(x) for x in text.split("/", 1))
    except ValueError:
        raise ValueError(f"--checker-worker wants N/COUNT, not {text!r}") from None
    if not 0 <= shard < count:
        raise ValueError(f"--checker-worker {text}: N must be between 0 and COUNT-1")
    return shard, count


def decision_line(index: int, result: ProbeResult, change: Change | None, offset: int | None) -> bytes:
    msg: dict[str, Any] = {"i": index, "ok": result.ok, "r": result.reason, "o": offset,
                           "v": change.verdict.value if change else None}
    if change is not None:
        msg["f"], msg["c"] = change.failures, change.confirmed
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def plan_fingerprint(flat: list[tuple[Any, Any, Any]]) -> str:
    """What names the checker list both sides index: a worker built from another configuration must not run."""
    names = [[svc.plan.name, srv.plan.name, chk.plan.name, repr(chk.plan.timing)] for svc, srv, chk in flat]
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:16]


def init_line(flat: list[tuple[Any, Any, Any]], shard: int, count: int, now: float) -> bytes:
    """The first line a worker reads on stdin: the plan it must have built and its checkers' state.

    At start the state is each checker's fresh one; after a reload it is the
    verdict and history the checker process kept, so that restarted workers
    go on where the old ones were (no re-check from DOWN, no flap).
    """
    # a checker run by a worker has a core here that never recorded: what it ran is in `attempts`
    state = [[i, chk.core.verdict.value, chk.core.has_run or chk.attempts > 0,
              0 if chk.attempts > 0 and not chk.core.has_run else chk.core.retry_it, chk.core.failures,
              round(max(0.0, chk.core.next_due_s - now), 3), chk.offset]
             for i, (_svc, _srv, chk) in enumerate(flat) if i % count == shard]
    return json.dumps({"plan": plan_fingerprint(flat), "init": state}, separators=(",", ":")).encode() + b"\n"


def apply_init(flat: list[tuple[Any, Any, Any]], msg: dict[str, Any], now: float) -> None:
    """Take over the checker process's state for our checkers (ValueError when the plans differ)."""
    if msg.get("plan") != plan_fingerprint(flat):
        raise ValueError("this worker's configuration is not the checker's (a reload raced with another)")
    for i, verdict, has_run, retry_it, failures, next_in, offset in msg.get("init", []):
        chk = flat[i][2]
        chk.core.verdict, chk.core.has_run = Verdict(verdict), bool(has_run)
        chk.core.retry_it, chk.core.failures = int(retry_it), int(failures)
        chk.core.next_due_s = now + float(next_in)
        chk.offset = int(offset)


def parse_line(line: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    return data


def change_of(msg: dict[str, Any]) -> Change | None:
    verdict = msg.get("v")
    if verdict is None:
        return None
    return Change(Verdict(verdict), int(msg.get("f", 0)), bool(msg.get("c", False)))


async def run_worker(service: Any, shard: int, count: int) -> None:
    """Run this shard's checkers of `service` (a CheckService that never starts its own) and report."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # a worker only runs under the checker, which stops it with SIGTERM; Ctrl-C reaches the whole process
    # group, and the parent's ordered stop (daemon/handover.py) must find the checks still running
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2):
        loop.add_signal_handler(sig, lambda: None)
    # a buffered pipe transport: a full pipe never blocks the probes (or SIGTERM) in a write
    # on a file of its own (closefd=False): closing the transport must not close sys.stdout, which the
    # command line flushes on the way out (a restart by a reload stops workers while the checker runs on)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, open(sys.stdout.fileno(), "wb", closefd=False))
    reader = asyncio.StreamReader(limit=1 << 26)  # the init line names every checker of the shard: megabytes
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        apply_init(service.flat_checkers(), parse_line(await reader.readline()), service.clock())
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        out.close()
        raise WorkerStartError(f"checker worker {shard}/{count} cannot start: {exc}") from None
    mine = [(i, entry) for i, entry in enumerate(service.flat_checkers())
            if i % count == shard and not entry[2].plan.immediate and not entry[2].plan.event]  # FILE/BFD stay here

    def send(data: bytes) -> None:
        if out.is_closing():
            stop.set()
            return
        out.write(data)

    def _srv_name(index: int) -> str:
        return str(service.flat_checkers()[index][1].plan.name)

    ha = watch_for(service.services, service.config, quiet=True)  # ha_suspend: the main process logs it

    def after(index: int, chk: Any, result: ProbeResult, change: Change | None) -> None:
        offset = None
        if result.ok and result.weight_offset is not None and result.weight_offset != chk.offset:
            chk.offset = offset = result.weight_offset
        if change is not None and change.verdict is Verdict.DOWN:
            chk.offset = 0
        if change is not None or offset is not None:
            send(decision_line(index, result, change, offset))
        elif not result.ok and chk.core.verdict is Verdict.UP and service.log_all_failures(chk):
            log.info("%s on service %s failed (%s), will retry", chk.plan.kind, _srv_name(index),
                     result.reason)

    async def loop_one(index: int, chk: Any) -> None:
        vs_name = service.flat_checkers()[index][0].plan.name
        while True:
            delay = chk.core.next_due_s - service.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            await ha.wait_runs(vs_name)
            result, change = await attempt(chk, service.clock)
            after(index, chk, result, change)

    def engine_outcome(job: Job, result: ProbeResult, change: Change | None) -> None:
        after(job.owner, job.chk, result, change)

    async def stats() -> None:
        sent = {i: chk.attempts for i, (_svc, _srv, chk) in mine}
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            now = service.clock()
            rows = []
            for i, (_svc, _srv, chk) in mine:  # those that ran since the last report
                if chk.attempts != sent[i]:
                    sent[i] = chk.attempts
                    rows.append([i, chk.attempts, chk.last_ok, chk.last_reason,
                                 round(max(0.0, chk.core.next_due_s - now), 3)])
            if rows:
                send(json.dumps({"s": rows}, separators=(",", ":")).encode() + b"\n")

    async def lifeline() -> None:
        await reader.read()  # EOF: the main process is gone
        stop.set()

    if ha.active:
        await ha.start()
    engine = ProbeEngine(loop, service.clock, engine_outcome, ha.runs if ha.active else None,
                         mark=notrack_mark(service.config), syn_probe=syn_probes(service.config))
    tasks = []
    for i, (svc, _srv, chk) in mine:
        if runs_here(chk):
            engine.add(chk, i, svc.plan.name)  # TCP_CHECK and HTTP_GET: the engine, as in the checker process
        else:
            tasks.append(loop.create_task(loop_one(i, chk)))
    if ha.active:
        tasks.append(loop.create_task(ha.run()))
    tasks += [loop.create_task(stats()), loop.create_task(lifeline())]
    log.info("Checker worker %d/%d runs %d checkers", shard, count, len(mine))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        engine.close()
        service.runner.terminate_all()
        out.close()
