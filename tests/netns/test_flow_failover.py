"""What nftables keeps in dynamic sets survives the master's death when flows are consistent (issue 17).

conntrackd carries NAT connections to the backup, but not the dynamic sets
the nftables data plane keeps: persistence's clients and DR/TUN's flows
(lvs/nft_rules.py). With `pykeepalived_consistent_flows on` both routers hash
new clients and flows alike, so the backup sends every one where the master
did:

- DR lab, rr: long-lived kept-alive connections through the VIP (a request
  every 100 ms) all get answers from their own real server after the master
  is SIGKILLed; persistent clients of the fwmark service (persistence_timeout
  30) stay on their server. With the mode off (the control) the backup
  schedules mid-stream packets afresh: connections land on servers that
  never heard of them and are reset, and clients move.
- NAT lab: persistent clients keep their server across the master's death.

The lab is LvsLab with one line added to both routers' global_defs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import LabError, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import FWMARK_VIP, VIP, LvsLab
from pykeepalived.lab.streams import Conn, describe, through_event

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

STREAMS = 12  # rr over 3 servers: by chance all would survive without the mode once in 3**12
CLIENTS = [f"203.0.113.{n}" for n in range(101, 107)]  # persistent clients: extra addresses of the client host
ANSWERS_AFTER = 3  # answers on the same socket after the backup took over that make a connection kept
SETTLE_S = 20.0  # after the backup holds the VIP: TCP's backed-off retransmits (0.2, 0.4 ... 3.2 s) fit
KEYWORD = "pykeepalived_consistent_flows"


class FlowLab(LvsLab):
    """LvsLab on the nftables data plane with `pykeepalived_consistent_flows on|off` in both routers' configs."""

    def __init__(self, kind: str, consistent: bool, workdir: Path) -> None:
        super().__init__(kind, prefix=unique_prefix(f"ff{kind}"), name=f"ff-{kind}", workdir=workdir,
                         dataplane="nftables")
        self.consistent = consistent

    def _configure_routers(self) -> None:
        """The lab's configs, then the one line (before the routers start: the mode is read at start)."""
        super()._configure_routers()
        for router in self.routers.values():
            text = router.conf_path.read_text()
            line = f"{KEYWORD} {'on' if self.consistent else 'off'}"
            changed = text.replace("global_defs {\n", f"global_defs {{\n    {line}\n", 1)
            if changed == text:
                raise LabError(f"no global_defs block in {router.conf_path} to add {line} to")
            router.conf_path.write_text(changed)


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Any]:
    labs: list[FlowLab] = []

    def make(kind: str, consistent: bool) -> FlowLab:
        lab = FlowLab(kind, consistent, tmp_path / f"lab-{kind}-{len(labs)}")
        labs.append(lab)
        lab.up()  # closes what it made if it fails
        for address in CLIENTS:
            lab.client.netns.ip("addr", "add", f"{address}/24", "dev", lab.client.ifname)
        said = "consistent flows" in lab.router("router1").log()
        assert said == consistent, f"router1's log does not show the mode asked for:\n{lab.router('router1').log()}"
        return lab

    try:
        yield make
    finally:
        for lab in labs:
            lab.close()


def served_by(lab: LvsLab, client: str) -> str:
    """The real server that answers `client` (one of CLIENTS) on the persistent fwmark service."""
    argv = ["curl", "-sS", "--interface", client, "--max-time", "3", f"http://{FWMARK_VIP}/whoami"]
    proc = lab.client.netns.run(argv, check=False, timeout_s=10)
    if proc.returncode != 0:
        raise LabError(f"GET from {client}: {proc.stderr.strip()}")
    return proc.stdout.split()[0]


def fail_over(lab: LvsLab) -> None:
    """SIGKILL the master (its links go down with it) and wait until the backup holds the VIP."""
    lab.kill_router("router1")
    lab.wait_for_master(10, "router2")


def streams_through_failover(lab: LvsLab) -> list[Conn]:
    """STREAMS long-lived connections through the master's death (lab/streams.through_event)."""
    return through_event(lab.client.netns.name, str(VIP), 80, STREAMS, lambda: fail_over(lab), settle_s=SETTLE_S,
                         answers_after=ANSWERS_AFTER)


def kept(streams: list[Conn]) -> list[Conn]:
    """The connections answered after the failover (on their socket) by the one server that answered before."""
    return [c for c in streams if not c.end_reason and c.answers >= ANSWERS_AFTER and len(c.servers) == 1]


def run_dr_failover(make_lab: Any, consistent: bool) -> tuple[list[Conn], dict[str, tuple[str, str]]]:
    lab = make_lab("dr", consistent)
    before = {client: served_by(lab, client) for client in CLIENTS}
    streams = streams_through_failover(lab)
    # reversed: without the mode, the backup's round robin would give each new client its slot afresh
    after = {client: served_by(lab, client) for client in reversed(CLIENTS)}
    return streams, {client: (before[client], after[client]) for client in CLIENTS}


def _show(streams: list[Conn]) -> str:
    return json.dumps(describe(streams), indent=1)  # answers: those after the failover (through_event)


def test_dr_connections_and_persistent_clients_survive_the_masters_death(make_lab: Any) -> None:
    streams, clients = run_dr_failover(make_lab, consistent=True)
    assert len(kept(streams)) == STREAMS, _show(streams)
    assert len({c.servers[0] for c in streams}) > 1  # spread over the servers, not all on one
    assert all(before == after for before, after in clients.values()), clients


def test_without_consistent_flows_the_backup_scatters_dr_connections_and_clients(make_lab: Any) -> None:
    """The control: the same failover with the mode off loses connections and moves clients."""
    streams, clients = run_dr_failover(make_lab, consistent=False)
    assert len(kept(streams)) < STREAMS, _show(streams)
    assert any(c.end_reason == "reset" or len(c.servers) > 1 for c in streams), _show(streams)
    assert any(before != after for before, after in clients.values()), clients


def test_nat_persistent_clients_keep_their_server_across_the_masters_death(make_lab: Any) -> None:
    lab = make_lab("nat", True)
    before = {client: served_by(lab, client) for client in CLIENTS}
    fail_over(lab)
    wait_until(lambda: _answers(lab), 10, interval_s=0.2, what="the backup forwarding")
    after = {client: served_by(lab, client) for client in reversed(CLIENTS)}
    assert after == before
    assert len(set(before.values())) > 1  # the clients are spread, not all on one server


def _answers(lab: LvsLab) -> bool:
    try:
        served_by(lab, CLIENTS[0])
    except LabError:
        return False
    return True
