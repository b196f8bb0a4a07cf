"""Chaos under load: one fault at a time in an `LvsLab`, measured the way the VIP's clients see it.

During each event the client runs wrk through the VIP (keep-alive
connections and a new connection per request, `WrkLoad`) and a set of
long-lived connections that ask a question every 100 ms on the same socket
(`LineStreams`). The events (`EVENTS`):

- master_sigkill: the master's whole pykeepalived process group SIGKILLed,
  its VIPs gone and its links down (a dead machine: `LvsLab.kill_router`);
- master_clean_stop: SIGTERM to the master's pykeepalived;
- master_link_down: the master's public link down until the backup has taken
  over, then up again (the master takes its place back);
- partition: each router drops everything from the other (both LANs) until
  the backup has become master too, then the partition heals;
- rs_kill: a real server's nginx SIGKILLed; rs_flap: the same real server
  killed and restarted every 2 s for a few periods;
- checker_kill / vrrp_kill: the master's checker / VRRP child SIGKILLed (the
  supervisor restarts it);
- reload: `pykeepalived reload` of the master with its unchanged config;
- drain: rs3 drained on the master through the runtime API (`pykeepalived
  ctl drain`; the lab's routers serve the API with its runtime routes), put
  back by the restore;
- table_deleted: someone deletes the master's nftables table (the checker
  must put it back).

Per event (`ChaosDriver.run`): wrk's failed requests per style, the longest
gap (the longest time in which no long-lived connection got an answer), the
long-lived connections open before the event that still got answers on the
same socket after it ("kept"), and the time from the event's last action to
a steady state: every stream answering again and the lab in its expected
roles (the backup holding the VIPs after a kill or stop; the master back for
every other event). Afterwards the driver restores the lab (routers started,
links up, partition healed, real servers started) and waits until it is as
`LvsLab.up()` left it, so events stay independent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lvs_lab import API_ROUTER_ARGS, ROUTER_SPECS, LvsLab
from .netns import LabError, Netns
from .peers import wait_until
from .reload_driver import WrkLoad, reload_pykeepalived
from .streams import LineStreams

MASTER, BACKUP = ROUTER_SPECS[0].name, ROUTER_SPECS[1].name
NFT_TABLE = "pykeepalived_lvs"  # the nftables data plane's table (lvs/nft_rules.TABLE)
PARTITION_TABLE = "pkchaos_partition"
VICTIM = "rs3"  # the real server the real-server events take away
FLAP_PERIOD_S = 2.0
FLAP_TOGGLES = 4  # down, up, down, up
TAKEOVER_TIMEOUT_S = 12.0
HOLD_S = 1.0  # a link down or a partition lasts this long after the backup took over
RESTORE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EventSpec:
    """One chaos event: `planned` ones must fail nothing; `vrrp_only` ones apply to a VRRP-only pair too."""

    name: str
    description: str
    planned: bool = False
    crash: bool = False  # the master (or its VRRP side) dies: only connection sync keeps connections
    vrrp_only: bool = False


EVENTS: dict[str, EventSpec] = {e.name: e for e in (
    EventSpec("master_sigkill", "the master's pykeepalived process group SIGKILLed, VIPs and links gone",
              crash=True, vrrp_only=True),
    EventSpec("master_clean_stop", "SIGTERM to the master's pykeepalived", planned=True, vrrp_only=True),
    EventSpec("master_link_down", "the master's public link down until the backup took over, then up",
              crash=True, vrrp_only=True),
    EventSpec("partition", "the routers drop each other's packets until both are master, then heal",
              vrrp_only=True),
    EventSpec("rs_kill", f"{VICTIM}'s nginx SIGKILLed"),
    EventSpec("rs_flap", f"{VICTIM}'s nginx killed and restarted every {FLAP_PERIOD_S:g} s"),
    EventSpec("checker_kill", "the master's checker child SIGKILLed"),
    EventSpec("vrrp_kill", "the master's VRRP child SIGKILLed", crash=True, vrrp_only=True),
    EventSpec("reload", "pykeepalived reload of the master, config unchanged", planned=True),
    EventSpec("drain", f"{VICTIM} drained on the master through the runtime API (`pykeepalived ctl drain`)",
              planned=True),
    EventSpec("table_deleted", f"nft delete table ip {NFT_TABLE} in the master"),
)}


@dataclass
class Fired:
    """What an event's actions left for the measurement: when they ended and what "steady" means."""

    ended_at: float
    settled: Callable[[], bool]
    servers_down: frozenset[str] = frozenset()
    detail: dict[str, Any] = field(default_factory=dict)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Load:
    """How much load an event runs under and how long it is watched (see ChaosDriver)."""

    streams: int = 50
    baseline_s: float = 1.0
    window_s: float = 2.0
    steady_timeout_s: float = 30.0
    wrk_keepalive: int = 4
    wrk_new_conn: int = 2
    wrk_delay_ms: int = 20


def measure_under_load(client: Netns, address: str, port: int, out: Path, fire: Callable[[], Fired],
                       load: Load) -> dict[str, Any]:
    """Start wrk and the long-lived connections from `client` to address:port, `fire()` the event, wait for
    a steady state (every stream answering since the event's end and `Fired.settled()`), watch
    `load.window_s` more, stop: failed requests per wrk style, the longest gap, what became of the
    connections open before the event, the event's length and the time from its end to steady.
    """
    out.mkdir(parents=True, exist_ok=True)
    streams = LineStreams(client.name, address, port, count=load.streams)
    wrk = WrkLoad(client, f"http://{address}:{port}/whoami", out, keepalive_connections=load.wrk_keepalive,
                  new_conn_connections=load.wrk_new_conn, delay_ms=load.wrk_delay_ms)
    steady_at: float | None = None
    try:
        streams.start()
        wrk.start()
        time.sleep(load.baseline_s)
        mark = streams.mark()
        fired = fire()

        def steady() -> bool:
            settled = fired.settled()  # first: some events time what they see (the table back)
            return settled and streams.all_answering(since=fired.ended_at)

        try:
            wait_until(steady, load.steady_timeout_s, interval_s=0.05)
            steady_at = time.monotonic()
        except LabError:
            fired.detail["unsteady"] = streams.summary_line()
        time.sleep(load.window_s)
        until = time.monotonic()
        wrk_results = wrk.stop()
    finally:
        wrk.kill()
        streams.stop()
    return {
        "failed": {style: r["failed"] for style, r in wrk_results.items()},
        "requests": {style: r["requests"] for style, r in wrk_results.items()},
        "socket_errors": {style: r["socket_errors"] for style, r in wrk_results.items()},
        "longest_gap_s": round(streams.longest_gap(mark.at, until), 3),
        "streams": streams.report(mark, until, servers_down=fired.servers_down),
        "event_s": round(fired.ended_at - mark.at, 3),
        "steady_s": round(steady_at - fired.ended_at, 3) if steady_at is not None else None,
        "detail": fired.detail,
    }


class ChaosDriver:
    """Runs `EVENTS` one at a time against a lab that is up, under load, and restores it after each.

    Conntrack's mid-stream pickup is turned off in both routers
    (net.netfilter.nf_conntrack_tcp_loose=0, per namespace) unless
    `mid_stream_pickup`: with it on, a backup adopts a mid-stream packet as a
    new flow and round robin sometimes sends it to the very server that holds
    the connection, so connections would survive a failover by chance.

    `streams` long-lived connections (the issue asks for 50), wrk with
    `wrk_keepalive` + `wrk_new_conn` connections each pausing `wrk_delay_ms`
    between requests (room left for the daemons on two cores), `baseline_s`
    of load before the event and `window_s` after the steady state.
    """

    def __init__(self, lab: LvsLab, workdir: Path, *, streams: int = 50, baseline_s: float = 1.0,
                 window_s: float = 2.0, steady_timeout_s: float = 30.0, wrk_keepalive: int = 4,
                 wrk_new_conn: int = 2, wrk_delay_ms: int = 20, mid_stream_pickup: bool = False) -> None:
        self.lab, self.workdir = lab, workdir
        for router in lab.routers.values():
            router.netns.run(["sysctl", "-q", "-w",
                              f"net.netfilter.nf_conntrack_tcp_loose={1 if mid_stream_pickup else 0}"])
        self.streams, self.baseline_s, self.window_s = streams, baseline_s, window_s
        self.steady_timeout_s = steady_timeout_s
        self.wrk_keepalive, self.wrk_new_conn, self.wrk_delay_ms = wrk_keepalive, wrk_new_conn, wrk_delay_ms
        self.runs = 0
        self.drained = False  # the drain event left the victim drained: restore() puts it back

    # -- the lab's roles ---------------------------------------------------------------------

    def held(self, router: str) -> bool:
        """Whether `router` holds every VIP of the lab."""
        return set(self.lab.vips) <= self.lab.router(router).addresses()

    def sole_holder(self, router: str) -> bool:
        other = BACKUP if router == MASTER else MASTER
        other_r = self.lab.router(other)
        others_hold = other_r.running() and bool(set(self.lab.vips) & other_r.addresses()) \
            if other_r.netns.exists() else False
        return self.held(router) and not others_hold

    def table_present(self, router: str = MASTER) -> bool:
        out = self.lab.router(router).netns.run(["nft", "list", "table", "ip", NFT_TABLE], check=False)
        return out.returncode == 0

    def alive_on_master(self) -> dict[str, int]:
        try:
            return self.lab.alive_counts(MASTER)
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    # -- one event ---------------------------------------------------------------------------

    def run(self, name: str) -> dict[str, Any]:
        """Run event `name` under load; the measurements as a JSON-ready dict. The lab is restored after."""
        spec = EVENTS[name]
        self.runs += 1
        self.restore()  # a no-op on a lab in its start state; repairs one a failed event left
        load = Load(streams=self.streams, baseline_s=self.baseline_s, window_s=self.window_s,
                    steady_timeout_s=self.steady_timeout_s, wrk_keepalive=self.wrk_keepalive,
                    wrk_new_conn=self.wrk_new_conn, wrk_delay_ms=self.wrk_delay_ms)
        try:
            measured = measure_under_load(self.lab.client.netns, str(self.lab.vip), 80,
                                          self.workdir / f"{self.runs:02d}-{name}", lambda: FIRE[name](self), load)
        except BaseException:
            try:
                self.restore()  # leave the lab usable for the next event; the first error is the one to see
            except (LabError, OSError):
                pass
            raise
        result = {"event": name, "lab": self.lab.kind.value, "sync": self.lab.sync_daemon, "planned": spec.planned,
                  **measured}
        self.restore()
        return result

    # -- restoring ---------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """The lab as `up()` left it: router1 the sole holder, every checker seeing every real server."""
        def ready() -> bool:
            return self.lab.is_ready() and self.sole_holder(MASTER)

        try:
            wait_until(ready, RESTORE_TIMEOUT_S, interval_s=0.1)
        except LabError as exc:
            raise LabError(f"the lab is not back in its start state: {exc}\n"
                           f"{self.lab.status_text(MASTER)}") from exc

    def restore(self) -> None:
        """Undo whatever an event left: partition tables, links, stopped real servers and routers."""
        lab = self.lab
        for router in lab.routers.values():
            router.netns.run(["nft", "delete", "table", "ip", PARTITION_TABLE], check=False)
            for host in (router.public, router.private):
                host.netns.ip("link", "set", host.ifname, "up")
        for rs in lab.real_servers:
            if not rs.nginx.running():
                lab.start_real_server(rs.name)
        for name, router in lab.routers.items():
            if not router.running():
                lab.start_router(name)
        if self.drained:
            self.drained = False
            if lab.router(MASTER).running():
                done = lab.ctl(MASTER, "undrain", *_victim_target(self))
                if done.returncode != 0:
                    raise LabError(f"pykeepalived ctl undrain failed ({done.returncode}): {done.stderr.strip()}")
        self.ensure_ready()


# ----------------------------------------------------------------------------------------------
# The events' actions


def _wait_quietly(predicate: Callable[[], bool], timeout_s: float) -> float | None:
    try:
        return round(wait_until(predicate, timeout_s, interval_s=0.05), 3)
    except LabError:
        return None


def _master_sigkill(d: ChaosDriver) -> Fired:
    d.lab.kill_router(MASTER)
    return Fired(time.monotonic(), lambda: d.held(BACKUP))


def _master_clean_stop(d: ChaosDriver) -> Fired:
    started = time.monotonic()
    d.lab.stop_router(MASTER)
    return Fired(started, lambda: d.held(BACKUP), detail={"stop_s": round(time.monotonic() - started, 3)})


def _master_link_down(d: ChaosDriver) -> Fired:
    router = d.lab.router(MASTER)
    started = time.monotonic()
    router.netns.ip("link", "set", router.public.ifname, "down")
    takeover = _wait_quietly(lambda: d.held(BACKUP), TAKEOVER_TIMEOUT_S)
    time.sleep(HOLD_S)
    router.netns.ip("link", "set", router.public.ifname, "up")
    return Fired(time.monotonic(), lambda: d.sole_holder(MASTER),
                 detail={"takeover_s": takeover, "down_s": round(time.monotonic() - started, 3)})


def partition_rules(addresses: list[str]) -> str:
    """An nftables table that drops every packet from `addresses` before anything else sees it."""
    return (f"table ip {PARTITION_TABLE} {{\n"
            "    chain input {\n"
            "        type filter hook prerouting priority -400; policy accept;\n"
            f"        ip saddr {{ {', '.join(addresses)} }} drop\n"
            "    }\n"
            "}\n")


def _partition(d: ChaosDriver) -> Fired:
    r1, r2 = d.lab.router(MASTER), d.lab.router(BACKUP)
    started = time.monotonic()
    for me, peer in ((r1, r2), (r2, r1)):
        me.netns.run(["nft", "-f", "-"], input=partition_rules([str(peer.public.ipv4.ip),
                                                                str(peer.private.ipv4.ip)]))
    split = _wait_quietly(lambda: bool(set(d.lab.vips) & r2.addresses()), TAKEOVER_TIMEOUT_S)
    time.sleep(HOLD_S)
    for router in (r1, r2):
        router.netns.run(["nft", "delete", "table", "ip", PARTITION_TABLE], check=False)
    return Fired(time.monotonic(), lambda: d.sole_holder(MASTER),
                 detail={"split_brain_s": split, "partitioned_s": round(time.monotonic() - started, 3)})


def _rs_kill(d: ChaosDriver) -> Fired:
    d.lab.stop_real_server(VICTIM)
    wanted = len(d.lab.real_servers) - 1

    def removed() -> bool:
        counts = d.alive_on_master()
        return bool(counts) and all(n == wanted for n in counts.values())

    return Fired(time.monotonic(), removed, servers_down=frozenset({VICTIM}))


def _rs_flap(d: ChaosDriver) -> Fired:
    started = time.monotonic()
    for toggle in range(FLAP_TOGGLES):
        if toggle % 2 == 0:
            d.lab.stop_real_server(VICTIM)
        else:
            d.lab.start_real_server(VICTIM)
        time.sleep(max(0.0, started + (toggle + 1) * FLAP_PERIOD_S - time.monotonic()))
    wanted = len(d.lab.real_servers)

    def back() -> bool:
        counts = d.alive_on_master()
        return bool(counts) and all(n == wanted for n in counts.values())

    return Fired(time.monotonic(), back, servers_down=frozenset({VICTIM}),
                 detail={"flaps": FLAP_TOGGLES // 2, "period_s": FLAP_PERIOD_S})


def _kill_child(d: ChaosDriver, which: int) -> tuple[int, Path]:
    path = d.lab.router(MASTER).pid_files[which]
    pid = _pid_in(path)
    if pid is None:
        raise LabError(f"no pid in {path}")
    os.kill(pid, 9)
    return pid, path


def _checker_kill(d: ChaosDriver) -> Fired:
    old, path = _kill_child(d, 2)
    wanted = len(d.lab.real_servers)

    def back() -> bool:
        counts = d.alive_on_master()
        return (_pid_in(path) not in (None, old) and bool(counts) and all(n == wanted for n in counts.values())
                and d.table_present())

    return Fired(time.monotonic(), back, detail={"killed_pid": old})


def _vrrp_kill(d: ChaosDriver) -> Fired:
    old, path = _kill_child(d, 1)
    return Fired(time.monotonic(), lambda: _pid_in(path) not in (None, old) and d.sole_holder(MASTER),
                 detail={"killed_pid": old})


def _reload(d: ChaosDriver) -> Fired:
    router = d.lab.router(MASTER)
    started = time.monotonic()
    outcome = reload_pykeepalived(router.netns, router.pid_files[0], router.log_path, "chaos", use_command=True)
    return Fired(started, lambda: d.sole_holder(MASTER),
                 detail={"reload_ok": outcome.ok, "reload_s": round(outcome.seconds, 3),
                         "reload_output": outcome.output.strip()[-300:]})


def _victim_target(d: ChaosDriver) -> tuple[str, str]:
    """The plain virtual server's and the victim's names as the state document spells them."""
    return f"TCP {d.lab.vip}:80", f"{d.lab.real_server(VICTIM).address}:80"


def _drain(d: ChaosDriver) -> Fired:
    """A planned drain: weight 0 on the master, new connections go elsewhere, open ones (rs3's too) carry on."""
    started = time.monotonic()
    done = d.lab.ctl(MASTER, "drain", *_victim_target(d))
    if done.returncode != 0:
        raise LabError(f"pykeepalived ctl drain failed ({done.returncode}): {done.stderr.strip()}")
    d.drained = True
    return Fired(time.monotonic(), lambda: True,
                 detail={"drain_s": round(time.monotonic() - started, 3), "drain_output": done.stdout.strip()[-200:]})


def _table_deleted(d: ChaosDriver) -> Fired:
    router = d.lab.router(MASTER)
    started = time.monotonic()
    router.netns.run(["nft", "delete", "table", "ip", NFT_TABLE])
    detail: dict[str, Any] = {"table_back_s": None}

    def back() -> bool:
        if detail["table_back_s"] is None and d.table_present():
            detail["table_back_s"] = round(time.monotonic() - started, 3)
        return detail["table_back_s"] is not None and d.sole_holder(MASTER)

    return Fired(started, back, detail=detail)


FIRE: dict[str, Callable[[ChaosDriver], Fired]] = {
    "master_sigkill": _master_sigkill,
    "master_clean_stop": _master_clean_stop,
    "master_link_down": _master_link_down,
    "partition": _partition,
    "rs_kill": _rs_kill,
    "rs_flap": _rs_flap,
    "checker_kill": _checker_kill,
    "vrrp_kill": _vrrp_kill,
    "reload": _reload,
    "drain": _drain,
    "table_deleted": _table_deleted,
}
assert set(FIRE) == set(EVENTS)


def chaos_lab(kind: str, workdir: Path, *, prefix: str, sync: bool = False) -> LvsLab:
    """The lab the suite and the bench use: `kind` on the nftables data plane, connection sync if `sync`."""
    return LvsLab(kind, prefix=prefix, name=f"chaos-{kind}{'-sync' if sync else ''}", workdir=workdir,
                  dataplane="nftables", sync_daemon=sync,
                  router_args=API_ROUTER_ARGS)  # the drain event
