"""The kernel's process events: followed in the initial network namespace, refused in any other.

The watch loop of vrrp_track_process runs here in the test process (root, in
the initial namespace: no VRRP, nothing on the wire) and must report a
tracked process starting and exiting within a few tens of milliseconds; in a
namespace the connector is refused and the daemon polls /proc instead
(tests/netns/test_track_process.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from pykeepalived.config.model import TrackProcess
from pykeepalived.host.proc_connector import ProcConnector, listening_here
from pykeepalived.vrrp.process_watch import first_scan, watch_processes
from pykeepalived.vrrp.track_process import ProcessTable

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


def test_refused_in_another_network_namespace() -> None:
    netns = f"pkpc-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        code = "from pykeepalived.host.proc_connector import listening_here; print(listening_here())"
        out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True,
                             text=True, check=True, env={**os.environ}).stdout
        assert out.strip() == "False"
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


@pytest.mark.skipif(not listening_here(), reason="no proc connector in this namespace")
def test_events_reported_at_once() -> None:
    name = f"pkpc{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="pkpc-") as tmp:
        link = Path(tmp) / name
        link.symlink_to("/bin/sleep")
        table = ProcessTable({"T": TrackProcess("T", process=[name])})
        seen: list[tuple[bool, float]] = []

        async def main() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            first_scan(table, loop.time())
            task = asyncio.create_task(watch_processes(table, lambda _n, q: seen.append((q, time.monotonic())),
                                                       loop.time))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            proc = subprocess.Popen([str(link), "30"])
            try:
                while not seen:
                    await asyncio.sleep(0.005)
                up = seen[0][1] - started
                killed = time.monotonic()
                proc.kill()
                proc.wait()
                while len(seen) < 2:
                    await asyncio.sleep(0.005)
                down = seen[1][1] - killed
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                task.cancel()
            return up, down

        up, down = asyncio.run(asyncio.wait_for(main(), 10))
        print(f"with process events: start seen after {up * 1000:.0f} ms, exit after {down * 1000:.0f} ms")
        assert [q for q, _ in seen] == [True, False]
        assert up < 1.0 and down < 1.0


def test_connector_open_and_close() -> None:
    conn = ProcConnector.open()
    if conn is not None:
        assert conn.fileno() >= 0
        conn.close()
