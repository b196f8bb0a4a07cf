"""daemon/handover.py: when a clean stop holds the checker back for VRRP's hand-over, and for how long."""

from __future__ import annotations

import asyncio

from pykeepalived.daemon import handover
from pykeepalived.daemon.handover import handover_wait_s, holds_a_vip, wants_handover

MASTER = {"instances": [{"name": "VI_1", "state": "BACKUP"}, {"name": "VI_2", "state": "MASTER"}]}
BACKUP = {"instances": [{"name": "VI_1", "state": "BACKUP"}, {"name": "VI_2", "state": "FAULT"}]}


def test_a_master_with_a_checker_hands_over_first() -> None:
    assert wants_handover(vrrp_running=True, checker_running=True, release_dataplane=True, vrrp_part=MASTER)


def test_nothing_waits_where_waiting_cannot_help() -> None:
    # a VRRP-only router, a checker-only one, -I (the rules stay), a backup (no VIP reaches it)
    assert not wants_handover(vrrp_running=True, checker_running=False, release_dataplane=True, vrrp_part=MASTER)
    assert not wants_handover(vrrp_running=False, checker_running=True, release_dataplane=True, vrrp_part=MASTER)
    assert not wants_handover(vrrp_running=True, checker_running=True, release_dataplane=False, vrrp_part=MASTER)
    assert not wants_handover(vrrp_running=True, checker_running=True, release_dataplane=True, vrrp_part=BACKUP)
    assert not wants_handover(vrrp_running=True, checker_running=True, release_dataplane=True, vrrp_part=MASTER,
                              virtual_servers=False)  # a checker run with --all and nothing to check


def test_an_unknown_vrrp_state_is_taken_as_master() -> None:
    assert holds_a_vip(None)
    assert holds_a_vip({"instances": "?"})
    assert not holds_a_vip({"instances": []})


def test_the_wait_covers_vrrps_hold_within_the_stop_budget() -> None:
    assert handover_wait_s([1.0], 10.0) == 3.0  # VRRP holds at most skew + 1 s + 0.25 s
    assert handover_wait_s([], 10.0) == 3.0  # advert_int's default
    assert handover_wait_s([0.05, 2.0], 10.0) == 5.0
    long = handover_wait_s([10.0], 10.0)
    assert long == 10.0 - handover.HANDOVER_GRACE_S - handover.CHECKER_STOP_S
    assert handover_wait_s([10.0], 2.0) == handover.MIN_HANDOVER_WAIT_S


def test_wait_exit_is_bounded_and_leaves_the_wait_running() -> None:
    async def main() -> tuple[bool, bool, bool]:
        done = asyncio.get_running_loop().create_future()
        first = await handover.wait_exit(done, 0.01)
        cancelled = done.cancelled()
        done.set_result(0)
        return first, cancelled, await handover.wait_exit(done, 0.01)

    assert asyncio.run(main()) == (False, False, True)
