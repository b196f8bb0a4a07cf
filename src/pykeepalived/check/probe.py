"""What every checker's I/O has in common: where it connects, and what one attempt says.

A probe is one attempt of one checker (one TCP connect, one HTTP GET of every
url, one DNS query, one script run). It never raises and never outlives its
timeouts: whatever goes wrong becomes `ProbeResult(ok=False, reason=...)`, so
that the service can run thousands of them side by side on one event loop and
hand each result to the sans-IO `CheckerCore`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """Where one checker connects, completed from the checker, its real server and virtual server.

    `port` is None for checkers that have none (PING_CHECK, a fwmark service
    without connect_port). The bind fields are keepalived's bindto, bind_port
    and bind_if; `fwmark` sets SO_MARK on the checker's socket.
    """

    address: IPAddress
    port: int | None
    connect_timeout_s: float
    bind_address: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None

    def describe(self) -> str:
        """keepalived's `[addr]:proto:port` spelling without the protocol, for log lines."""
        return f"[{self.address}]:{self.port}" if self.port is not None else f"[{self.address}]"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One attempt's outcome.

    `weight_offset` is this checker's share of the real server's weight, as
    keepalived keeps it: the effective weight is the configured weight plus the
    offsets of all its checkers (misc_dynamic: exit status - 2 - configured
    weight; FILE_CHECK: file value x weight). None leaves the offset as it was.
    """

    ok: bool
    reason: str = ""
    weight_offset: int | None = None


OK = ProbeResult(True)


def failed(reason: str) -> ProbeResult:
    return ProbeResult(False, reason)


class Probe(Protocol):
    """One checker's attempt: `await probe.run()` returns within the checker's timeouts, never raises."""

    kind: str
    target: Target

    async def run(self) -> ProbeResult: ...
