"""daemon/sd_notify.py against a socket bound as systemd binds $NOTIFY_SOCKET (path and abstract names)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.daemon.sd_notify import Notifier, socket_address, watchdog_interval_s


def _receive(sock: socket.socket) -> list[str]:
    sock.settimeout(1.0)
    return sock.recv(4096).decode().split("\n")


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    try:
        yield sock, str(path)
    finally:
        sock.close()


def test_ready_reloading_stopping_status_and_watchdog_reach_a_path_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path}, 123)
    assert notifier.ready("VRRP and checker running")
    assert _receive(sock) == ["READY=1", "STATUS=VRRP and checker running"]
    assert notifier.reloading()
    fields = _receive(sock)
    assert fields[0] == "RELOADING=1" and fields[1].startswith("MONOTONIC_USEC=")
    assert 0 < int(fields[1].split("=", 1)[1]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.status("two\nlines")
    assert _receive(sock) == ["STATUS=two lines"]  # a STATUS= is one line
    notifier.watchdog()
    notifier.close()
    assert _receive(sock) == ["WATCHDOG=1"]
    notifier.stopping()
    assert _receive(sock) == ["STOPPING=1"]
    notifier.close()


def test_abstract_socket_names() -> None:
    name = f"pykeepalived-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        assert socket_address(f"@{name}") == b"\0" + name.encode()
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}"}, 1)
        notifier.ready()
        notifier.close()
        assert _receive(sock) == ["READY=1"]
    finally:
        sock.close()


def test_environment_is_taken_away_from_children_and_scripts(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "77", "PATH": "/bin"}
    notifier = Notifier(env, 77)
    assert notifier.enabled and notifier.watchdog_s == 4.0
    assert env == {"PATH": "/bin"}


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier({}, 1)
    assert not notifier.enabled and not notifier.ready() and notifier.watchdog_s is None
    assert not Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}, 1).enabled
    gone = Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"}, 1)
    assert gone.enabled and not gone.ready()  # systemd gone: logged at debug, never raised
    gone.close()


@pytest.mark.parametrize(("env", "pid", "expected"), [
    ({"WATCHDOG_USEC": "3000000"}, 5, 3.0),
    ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "5"}, 5, 3.0),
    ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "6"}, 5, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, 5, None),
    ({"WATCHDOG_USEC": "soon"}, 5, None),
    ({}, 5, None),
])
def test_watchdog_interval(env: dict[str, str], pid: int, expected: float | None) -> None:
    assert watchdog_interval_s(env, pid) == expected


def test_notifier_defaults_to_this_process_environment(monkeypatch: pytest.MonkeyPatch,
                                                        listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier()
    assert "NOTIFY_SOCKET" not in os.environ and notifier.watchdog_s == 1.0
    notifier.watchdog()
    notifier.close()
    assert _receive(sock) == ["WATCHDOG=1"]


@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="systemd-notify is not installed")
@pytest.mark.parametrize("abstract", [False, True])
def test_same_datagram_as_systemds_own_systemd_notify(tmp_path: Path, abstract: bool) -> None:
    """systemd's reference client and ours put the same bytes on the same kinds of socket address."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"@pykeepalived-test-{uuid.uuid4().hex}" if abstract else str(tmp_path / "notify")
    sock.bind(b"\0" + name[1:].encode() if abstract else name)
    sock.settimeout(5.0)
    try:
        subprocess.run(["systemd-notify", "--no-block", "--ready", "--status=VRRP and checker running"],
                       env={"NOTIFY_SOCKET": name, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                       check=False, timeout=30, capture_output=True)
        reference = sock.recv(4096)
        notifier = Notifier({"NOTIFY_SOCKET": name}, 1)
        notifier.ready("VRRP and checker running")
        notifier.close()
        assert sock.recv(4096) == reference == b"READY=1\nSTATUS=VRRP and checker running"
    finally:
        sock.close()
