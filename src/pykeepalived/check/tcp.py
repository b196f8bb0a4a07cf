"""TCP_CHECK: the real server is healthy when a TCP connection to it opens within connect_timeout."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import CheckerBase
from .connect import ConnectFailed, connect_socket
from .probe import OK, ProbeResult, Target, failed


@dataclass
class TcpProbe:
    target: Target
    kind: str = "TCP_CHECK"

    async def run(self) -> ProbeResult:
        try:
            sock = await connect_socket(self.target)
        except ConnectFailed as exc:
            return failed(str(exc))
        sock.close()
        return OK


def make_probe(checker: CheckerBase, target: Target, ctx: object) -> TcpProbe:
    return TcpProbe(target)
