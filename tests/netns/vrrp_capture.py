"""Packet capture in a lab namespace for the VRRP keyword tests: tcpdump writes, tshark reads fields."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pykeepalived.lab import wait_until
from pykeepalived.lab.topology import Host

# The capture tests' skip when a tool is missing, one definition for every module that captures.
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("tcpdump") is None,
                                  reason="tshark and tcpdump needed")


@contextmanager
def capture(host: Host, pcap: Path, bpf: str, ifname: str | None = None) -> Iterator[Path]:
    """tcpdump on the host's lab interface (or `ifname`) while the block runs; the pcap is complete after."""
    # --immediate-mode: otherwise packets come in blocks and the last one is lost when tcpdump stops
    proc = host.netns.popen(["tcpdump", "-i", ifname or host.ifname, "--immediate-mode", "-U", "-n",
                             "-w", str(pcap), bpf])
    try:
        wait_until(lambda: pcap.exists() and pcap.stat().st_size > 0, 5.0, what="tcpdump started")
        yield pcap
    finally:
        stop_tcpdump(proc)


def stop_tcpdump(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (tcpdump flushes the file on it), SIGKILL after 5 s; test_vrrp_wire.py stops its captures so too."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def fields(pcap: Path, display_filter: str, names: list[str]) -> list[list[str]]:
    """tshark's fields for every packet matching the display filter."""
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-E", "separator=|",
            *[x for f in names for x in ("-e", f)]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]
