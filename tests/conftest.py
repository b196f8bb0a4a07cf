"""Shared fixtures: network namespaces that clean up after themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property tests judge behaviour, not speed: no per-example deadline (hypothesis' 200 ms default failed
# examples when the unit tests shared the machine with the qemu suite, see bootstrap.sh run_tests)
settings.register_profile("pykeepalived", deadline=None)
settings.load_profile("pykeepalived")
SAMPLES_DIRS = [Path("/usr/share/doc/keepalived/samples"), REPO.parent / "shared" / "compat" / "keepalived-samples"]


def samples_dir() -> Path | None:
    for d in SAMPLES_DIRS:
        if d.is_dir() and any(d.glob("keepalived.conf.*")):
            return d
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests run only when asked for by name (-m soak ...): the test command must fit CI's hour."""
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="soak: run apart with -m soak")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)


def _can_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def router_netns() -> Iterator[str]:
    """A namespace with interfaces eth0 and eth1 (a veth pair, both up), removed afterwards."""
    yield from _router_netns()


@pytest.fixture(scope="module")
def module_router_netns() -> Iterator[str]:
    """The same, once for a module whose tests only read it (the -t verdict corpus)."""
    yield from _router_netns()


def _router_netns() -> Iterator[str]:
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


@pytest.fixture(scope="session", autouse=True)
def _daemon_dump_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Daemons started by tests write their signal dumps into $TMPDIR (keepalived's rule): keep them out of /tmp.

    Set before any daemon starts and inherited by every process a test spawns; a
    test that wants its own directory (tests/netns/test_dumps.py) passes its own.
    """
    dump_dir = tmp_path_factory.mktemp("dumps")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(dump_dir)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old
