"""Shared fixtures: network namespaces that clean up after themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIRS = [Path("/usr/share/doc/keepalived/samples"), REPO.parent / "shared" / "compat" / "keepalived-samples"]


def samples_dir() -> Path | None:
    for d in SAMPLES_DIRS:
        if d.is_dir() and any(d.glob("keepalived.conf.*")):
            return d
    return None


def _can_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def router_netns() -> Iterator[str]:
    """A namespace with interfaces eth0 and eth1 (a veth pair, both up), removed afterwards."""
    if not _can_netns():
        pytest.skip("needs root and iproute2 for network namespaces")
    name = f"pkt-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True)
        for dev in ("eth0", "eth1"):
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
