"""Traffic through the VIP in the guide's topology, forwarded by the nftables data plane.

Each test has a lab of its own (NAT or DR; TUN needs IPIP, which this kernel
lacks): the client's requests reach every healthy real server in round robin, a
dead real server stops getting new connections within the checker's bound, the
master's death moves traffic to the backup, persistence keeps a client on one
server, and the fwmark service carries ports 80 and 443 to the same server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import LabError, unique_prefix
from pykeepalived.lab.lvs_lab import LvsLab

pytestmark = [pytest.mark.netns, pytest.mark.slow]

VIP = "203.0.113.10"
FWMARK_VIP = "203.0.113.11"
# The lab's checkers: delay_loop 1, connect_timeout 1, retry 1, delay_before_retry 1.
CHECKER_BOUND_S = 1 + 1 * (1 + 1) + 1 * 1
APPLY_SLACK_S = 1.5  # the apply, and a request that was already in flight


@pytest.fixture(params=["nat", "dr"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LvsLab]:
    kind = str(request.param)
    lab = LvsLab(kind, prefix=unique_prefix(f"dp{kind}"), name=f"dp-{kind}", workdir=tmp_path / "lab")
    try:
        lab.up()
        yield lab
    finally:
        lab.close()


def served_by(lab: LvsLab, url: str, timeout_s: float = 2.0) -> str:
    return lab.client_get(url, timeout_s).split()[0]


def test_requests_reach_every_real_server_in_round_robin(lab: LvsLab) -> None:
    names = [served_by(lab, f"http://{VIP}/whoami") for _ in range(9)]
    assert sorted(names) == ["rs1"] * 3 + ["rs2"] * 3 + ["rs3"] * 3
    assert names[:3] == names[3:6] == names[6:]  # the same order every round


def test_a_dead_real_server_stops_getting_new_connections_within_the_checker_bound(lab: LvsLab) -> None:
    lab.stop_real_server("rs2")
    died = time.monotonic()
    clean_since: float | None = None
    while time.monotonic() - died < CHECKER_BOUND_S + APPLY_SLACK_S + 3.0:
        try:
            name = served_by(lab, f"http://{VIP}/whoami", timeout_s=0.5)
        except LabError:
            name = "failed"
        if name == "failed":
            clean_since = None
        elif clean_since is None:
            clean_since = time.monotonic()
        if clean_since is not None and time.monotonic() - clean_since > 1.0:
            break
        time.sleep(0.05)
    assert clean_since is not None, "requests kept failing"
    assert clean_since - died <= CHECKER_BOUND_S + APPLY_SLACK_S
    assert {served_by(lab, f"http://{VIP}/whoami") for _ in range(6)} == {"rs1", "rs3"}
    lab.start_real_server("rs2")
    deadline = time.monotonic() + 10
    while "rs2" not in {served_by(lab, f"http://{VIP}/whoami") for _ in range(3)}:
        assert time.monotonic() < deadline, "rs2 did not come back"
        time.sleep(0.3)


def test_the_master_routers_death_moves_traffic_to_the_backup(lab: LvsLab) -> None:
    assert served_by(lab, f"http://{VIP}/whoami") in {"rs1", "rs2", "rs3"}
    lab.kill_router("router1")
    killed = time.monotonic()
    while True:
        try:
            served_by(lab, f"http://{VIP}/whoami", timeout_s=0.5)
            break
        except LabError:
            assert time.monotonic() - killed < 10, "no traffic through the backup"
            time.sleep(0.05)
    assert lab.which_router_is_master() == "router2"
    names = [served_by(lab, f"http://{VIP}/whoami") for _ in range(6)]
    assert sorted(names) == ["rs1", "rs1", "rs2", "rs2", "rs3", "rs3"]


def test_persistence_keeps_the_client_on_one_server_across_http_and_https(lab: LvsLab) -> None:
    first = served_by(lab, f"http://{FWMARK_VIP}/whoami")
    got = {served_by(lab, f"{scheme}://{FWMARK_VIP}/whoami") for scheme in ("http", "https") * 4}
    assert got == {first}
    # The plain service on the other VIP is not persistent: the same client is spread.
    assert len({served_by(lab, f"http://{VIP}/whoami") for _ in range(3)}) == 3


def test_status_counts_the_connections_of_each_real_server(lab: LvsLab) -> None:
    holder = lab.client.netns.popen(["python3", "-c", (
        "import socket, time\n"
        f"s = [socket.create_connection(('{VIP}', 80)) for _ in range(3)]\n"
        "time.sleep(20)\n")])
    try:
        deadline = time.monotonic() + 10
        while True:
            text = lab.status_text("router1")
            rows = [line.split() for line in text.splitlines() if line.strip().startswith("->")
                    and ":80 " in line and "10.11.12." in line]
            active = [int(r[4]) for r in rows[:3]]
            if sum(active) >= 3:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        assert active == [1, 1, 1], text
    finally:
        holder.kill()
        holder.wait(timeout=5)
