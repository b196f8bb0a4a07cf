"""The parent's stop order with real child processes (no lab): VRRP first, the checker after the hand-over.

daemon/handover.py: on a VRRP master with a checker, the parent sends SIGTERM
to the VRRP child alone, waits (bounded) for its exit plus a grace, and only
then stops the checker, whose stop removes the LVS rules. Stand-in children
(Python processes that note when SIGTERM came, then exit after a while or
never) show the order, that a backup stops both at once, and that a VRRP
child that never exits neither holds the checker back beyond the hand-over
wait nor the whole stop beyond STOP_TIMEOUT_S. The lab test
(test_clean_stop_handover.py) shows what the order is for.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from pykeepalived.daemon import handover, supervisor
from pykeepalived.daemon.supervisor import Child, Supervisor

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CHILD = """
import pathlib
import signal
import sys
import time

out, linger = pathlib.Path(sys.argv[1]), float(sys.argv[2])


def term(*_):
    out.write_text(repr(time.monotonic()))
    if linger >= 0:
        time.sleep(linger)
        sys.exit(0)


signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    time.sleep(1)
"""
MASTER = {"instances": [{"name": "VI_1", "state": "MASTER"}]}
BACKUP = {"instances": [{"name": "VI_1", "state": "BACKUP"}]}


async def _start(name: str, note: Path, linger_s: float) -> Child:
    child = Child(name, [sys.executable, "-c", CHILD, str(note), str(linger_s)])
    child.proc = await asyncio.create_subprocess_exec(*child.argv, stdout=asyncio.subprocess.PIPE)
    assert child.proc.stdout is not None
    assert await asyncio.wait_for(child.proc.stdout.readline(), 10) == b"ready\n"
    return child


def _stop(tmp_path: Path, vrrp_part: dict[str, object], vrrp_linger_s: float) -> dict[str, float]:
    """Stop a VRRP and a checker stand-in as the parent does; when each got SIGTERM and the stop's length."""
    async def main() -> dict[str, float]:
        vrrp = await _start("VRRP", tmp_path / "vrrp", vrrp_linger_s)
        checker = await _start("Healthcheck", tmp_path / "checker", 0.0)
        parent = Supervisor([vrrp, checker])
        parent.store.set_part("vrrp", vrrp_part)
        began = time.monotonic()
        try:
            await parent._stop_children()
        finally:
            for child in (vrrp, checker):
                if child.proc is not None and child.proc.returncode is None:
                    child.proc.kill()
                    await child.proc.wait()
        assert vrrp.proc is not None
        return {"stop_s": time.monotonic() - began, "vrrp_status": float(vrrp.proc.returncode or 0),
                "vrrp_term": float((tmp_path / "vrrp").read_text()) - began,
                "checker_term": float((tmp_path / "checker").read_text()) - began}

    return asyncio.run(main())


def test_a_master_stops_vrrp_first_and_the_checker_after_the_grace(tmp_path: Path) -> None:
    got = _stop(tmp_path, MASTER, 0.3)
    assert got["vrrp_term"] < 0.5, got
    assert got["checker_term"] >= got["vrrp_term"] + 0.3 + handover.HANDOVER_GRACE_S - 0.05, got
    assert got["stop_s"] < 0.3 + handover.HANDOVER_GRACE_S + 2.0, got


def test_a_backup_stops_both_at_once(tmp_path: Path) -> None:
    got = _stop(tmp_path, BACKUP, 0.3)
    assert abs(got["checker_term"] - got["vrrp_term"]) < 0.5, got
    assert got["stop_s"] < 2.0, got


def test_a_vrrp_child_that_never_exits_holds_nothing_for_long(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "STOP_TIMEOUT_S", 3.0)
    wait_s = handover.handover_wait_s([], 3.0)
    got = _stop(tmp_path, MASTER, -1.0)  # ignores SIGTERM
    assert wait_s - 0.05 <= got["checker_term"] < wait_s + 1.0, got  # no grace after a wait that ran out
    assert got["vrrp_status"] == -9.0, got  # SIGKILLed at the stop's deadline
    assert 3.0 - 0.05 <= got["stop_s"] < 3.0 + 1.5, got
