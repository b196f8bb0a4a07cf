"""Unit tests never touch the kernel: no kernel tool runs, no netlink socket opens.

The unit suite runs anywhere, as any user, beside other suites; a unit test
that reaches `modprobe`, `ip` or `nft` (a choice of data plane that loads
ip_vs did) changes the host it runs on and belongs in tests/netns. An audit
hook (PEP 578) watches process starts and socket creation while a unit test
runs: the offending call raises, and the test fails at teardown even when the
code under test swallowed the exception.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

# Programs that change (or read through netlink) the kernel's state.
KERNEL_TOOLS = frozenset({
    "modprobe", "insmod", "rmmod", "ip", "nft", "sysctl", "ipvsadm", "tc", "conntrack",
    "iptables", "ip6tables", "unshare", "nsenter", "ethtool",
})


class KernelTouched(RuntimeError):
    """A unit test started a kernel tool or opened a netlink socket."""


class _Guard:
    """Watches audit events while `active`; what it refused stays in `seen` until the test ends."""

    def __init__(self) -> None:
        self.active = False
        self.seen: list[str] = []

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active:
            return
        what = self._offence(event, args)
        if what is not None:
            self.seen.append(what)
            raise KernelTouched(f"unit tests must not touch the kernel: {what} (move the test to tests/netns)")

    @staticmethod
    def _offence(event: str, args: tuple[object, ...]) -> str | None:
        if event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
            program, argv = args[0], args[1]
            if isinstance(argv, (str, bytes)):
                argv = [argv]
            first = next(iter(argv), None) if isinstance(argv, (list, tuple)) else None
            for candidate in (program, first):
                words = os.fsdecode(candidate).split() if isinstance(candidate, (str, bytes)) else []
                name = os.path.basename(words[0]) if words else ""
                if name in KERNEL_TOOLS:
                    return f"runs {name!r} ({event})"
        if event == "socket.__new__" and len(args) > 1 and args[1] == socket.AF_NETLINK:
            return "opens a netlink socket"
        return None


GUARD = _Guard()
sys.addaudithook(GUARD)


@pytest.fixture(autouse=True)
def no_kernel_access() -> Iterator[None]:
    GUARD.seen.clear()
    GUARD.active = True
    try:
        yield
    finally:
        GUARD.active = False
    if GUARD.seen:
        pytest.fail("unit tests must not touch the kernel: " + "; ".join(GUARD.seen) + " (move it to tests/netns)")
