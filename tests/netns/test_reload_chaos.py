"""Reload chaos: 24 reloads of the master under wrk through the VIP, and nobody may notice.

The guide's NAT lab (`LvsLab("nat")`: pykeepalived on both routers, three
nginx real servers, plus a spare rs4 on the private LAN) carries wrk from the
client through the VIP: keep-alive connections and, in parallel, a new
connection per request (`Connection: close`). The master (router1) is then
reloaded: 20 times with its unchanged config, then with rs4 added, with rs3
removed, with its priority 150 -> 120 (still above the backup's 100: no
preemption), and with that config broken (virtual_router_id 300).

What must hold (issue 15): no failed request (wrk's socket errors and non-2xx
answers are 0 for both styles); no VIP move (sampled every 0.1 s, and neither
router logs a state change: the backup never "Entering MASTER STATE"); the
nftables table and the checker's status show exactly the expected real
servers right after each reload; the unchanged reloads keep the master's
advert rhythm (no extra or late advert, no gratuitous ARP); the new priority
is on the wire after its reload; the broken config is refused, naming
FILE:LINE, and leaves the table and the priority as they were.

The reload goes through `pykeepalived reload -p PIDFILE` where this build has
that command, else through SIGHUP and the children's log lines.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.lvs_lab import LvsLab
from pykeepalived.lab.reload_driver import (
    SPARE_HOST,
    LogCursor,
    ReloadOutcome,
    VipWatch,
    WireTap,
    WrkLoad,
    advert_rhythm,
    add_spare_real_server,
    break_conf,
    has_reload_command,
    nft_real_servers,
    reload_configs,
    reload_pykeepalived,
    state_entries,
    status_real_servers,
    wait_table,
)
from pykeepalived.lab.servers import NginxServer, stop_servers
from pykeepalived.lvs.nft_rules import service_chain

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root,
              pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (bootstrap.sh installs it)")]

SERVICES = ("[203.0.113.10]:tcp:80", "FWM 80")  # the lab's two virtual servers, as the checker names them
PACE_S = 0.3  # between reloads: 20 unchanged ones span several advert intervals
STATUS_GRACE_S = 2.5  # the status file is rewritten about once a second
MASTER_PUBLIC = "203.0.113.2"
GARP_SETTLE_S = 6.0


@pytest.fixture
def chaos_lab(tmp_path: Path) -> Iterator[LvsLab]:
    lab = LvsLab("nat", prefix=unique_prefix("rlc"), name="reload-chaos", workdir=tmp_path / "lab",
                 dataplane="nftables")
    spare: NginxServer | None = None
    try:
        lab.up()
        spare = add_spare_real_server(lab)
        yield lab
    finally:
        for router in lab.routers.values():
            print(f"===== {router.name} =====\n{router.log()[-6000:]}")
        if spare is not None:
            stop_servers([spare])
        lab.close()


def _fmt(table: dict[str, set[IPv4Address]]) -> str:
    return "; ".join(f"{k}: {' '.join(str(a) for a in sorted(v))}" for k, v in sorted(table.items()))


def _next_advert_priority(tap: WireTap, since: float, timeout_s: float = 2.5) -> int | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heard = tap.adverts(MASTER_PUBLIC, since=since)
        if heard:
            return heard[0].priority
        time.sleep(0.05)
    return None


@pytest.mark.timeout(150)
def test_reloads_under_load_drop_no_request_and_move_no_vip(chaos_lab: LvsLab, tmp_path: Path) -> None:
    lab = chaos_lab
    master, backup = lab.router("router1"), lab.router("router2")
    base = [rs.address for rs in lab.real_servers]
    spare = IPv4Address(f"10.11.12.{SPARE_HOST}")
    steps = reload_configs(base, spare)
    broken_line = break_conf(steps[-2].conf)[1]
    use_command = has_reload_command()
    chains = [service_chain(name) for name in SERVICES]

    watch = VipWatch({"router1": master.netns, "router2": backup.netns}, lab.vip)
    tap = WireTap(lab.client)
    wrk = WrkLoad(lab.client.netns, f"http://{lab.vip}/", tmp_path / "wrk")
    master_log, backup_log = LogCursor(master.log_path), LogCursor(backup.log_path)
    outcomes: list[ReloadOutcome] = []
    problems: list[str] = []
    times: dict[str, tuple[float, float]] = {}
    try:
        watch.start()
        wrk.start()
        # The new master's second GARP burst comes garp_master_delay (5 s) after its transition, which
        # was shortly before the lab was up: let it pass, so that GARPs heard later are the reloads' own.
        time.sleep(GARP_SETTLE_S)
        for step in steps:
            before = nft_real_servers(master.netns)
            master.conf_path.write_text(step.conf)
            started = time.monotonic()
            outcome = reload_pykeepalived(master.netns, master.pid_files[0], master.log_path, step.name,
                                          use_command=use_command, conf_path=master.conf_path)
            times[step.name] = (started, time.monotonic())
            outcomes.append(outcome)
            table = nft_real_servers(master.netns)  # right after the reload's answer
            if outcome.ok != step.expect_ok:
                problems.append(f"{step.name}: reload {'accepted' if outcome.ok else 'refused'} "
                                f"(exit {outcome.exit_code}): {outcome.output.strip()[-400:]} "
                                f"{outcome.log.strip()[-300:]}")
            want_nft = {chain: set(step.real_servers) for chain in chains}
            if {c: table.get(c) for c in chains} != want_nft:
                problems.append(f"{step.name}: nft right after the reload [{_fmt(table)}], want [{_fmt(want_nft)}]")
            want_status = {name: set(step.real_servers) for name in SERVICES}
            lag, seen = wait_table(lambda: status_real_servers(master.checker_status()), want_status,
                                   STATUS_GRACE_S)
            if lag is None:
                problems.append(f"{step.name}: status after {STATUS_GRACE_S} s [{_fmt(seen)}], "
                                f"want [{_fmt(want_status)}]")
            if step.broken:
                where = f"{master.conf_path}:{broken_line}"
                said = outcome.output + outcome.log
                if where not in said:
                    problems.append(f"{step.name}: the refusal does not name {where}: {said.strip()[-800:]}")
                if table != before:
                    problems.append(f"{step.name}: the refused reload changed the table [{_fmt(before)}] -> "
                                    f"[{_fmt(table)}]")
            if step.name in ("change-priority", "broken-config"):
                priority = _next_advert_priority(tap, times[step.name][1])
                if priority != step.priority:
                    problems.append(f"{step.name}: the master advertises priority {priority}, not {step.priority}")
            time.sleep(PACE_S)
        time.sleep(1.0)
        load = wrk.stop()
    finally:
        wrk.kill()
        watch.stop()
        tap.stop()

    unchanged = [o for o in outcomes if o.step.startswith("unchanged")]
    phase = (times[unchanged[0].step][0], times[unchanged[-1].step][1] + 1.0)
    rhythm = advert_rhythm([e.at for e in tap.adverts(MASTER_PUBLIC, *phase)])
    garps = tap.garps(*phase)
    summary = {
        "via": "command" if use_command else "sighup",
        "reload_s": {o.step: round(o.seconds, 3) for o in outcomes},
        "wrk": load, "vip_changes": watch.changes, "unchanged_rhythm": rhythm, "garps_unchanged": len(garps),
    }
    print(json.dumps(summary, default=str, indent=1))

    assert not problems, "\n".join(problems)
    for style, result in load.items():
        assert result["requests"] > 0 and result["failed"] == 0, (style, result)
    assert watch.moves == 0 and watch.changes[0][1] == ("router1",), watch.changes
    assert state_entries(master_log.since()) == [], master_log.since()[-3000:]
    assert state_entries(backup_log.since()) == [], backup_log.since()[-3000:]
    assert rhythm["extra"] == 0 and rhythm["late"] == 0, rhythm
    assert garps == [], garps
