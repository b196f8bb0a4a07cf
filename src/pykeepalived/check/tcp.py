"""TCP_CHECK: the real server is healthy when a TCP connection to it opens within connect_timeout."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from ..config.model import CheckerBase
from .connect import ConnectFailed, connect_socket
from .probe import OK, ProbeResult, Target, failed


_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(slots=True)
class TcpProbe:
    target: Target
    kind: str = "TCP_CHECK"

    async def run(self) -> ProbeResult:
        try:
            sock = await connect_socket(self.target)
        except ConnectFailed as exc:
            return failed(str(exc))
        # close with RST, as HAProxy's checks do: no FIN exchange and no TIME_WAIT left behind
        # for every check (thousands a second), on our side or the server's
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        sock.close()
        return OK


def make_probe(checker: CheckerBase, target: Target, ctx: object) -> TcpProbe:
    return TcpProbe(target)
