"""A TLS handshake that times out must not free its socket's descriptor under asyncio's feet.

asyncio's transport owns the socket once `open_connection(sock=...)` wraps
it, and closes it when it has finished; closing it ourselves first lets the
next socket take the same descriptor while the old transport still claims
it, and that next check then fails with "File descriptor N is used by
transport" (a healthy server marked down). Seen under load in the qemu guest.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl

import pytest

from pykeepalived.check.connect import ConnectFailed, open_stream
from pykeepalived.check.probe import Target

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


async def _scenario() -> list[str]:
    silent = socket.socket()  # accepts, never answers the TLS ClientHello
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    plain = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    outcomes: list[str] = []
    try:
        hanging = Target(ipaddress.ip_address("127.0.0.1"), silent.getsockname()[1], 0.2)
        healthy = Target(ipaddress.ip_address("127.0.0.1"), plain.sockets[0].getsockname()[1], 2.0)
        for _ in range(20):
            try:
                await open_stream(hanging, tls)
                outcomes.append("connected?")
            except ConnectFailed as exc:
                outcomes.append(f"hanging: {exc}")
            try:
                _, writer = await open_stream(healthy)
                writer.close()
                outcomes.append("healthy: ok")
            except Exception as exc:  # noqa: BLE001 - what the bug looked like
                outcomes.append(f"healthy: {type(exc).__name__}: {exc}")
    finally:
        plain.close()
        silent.close()
    return outcomes


def test_a_timed_out_handshake_leaves_the_next_checks_alone() -> None:
    outcomes = asyncio.run(_scenario())
    assert [o for o in outcomes if o.startswith("healthy") and o != "healthy: ok"] == []
    assert all("timed out" in o for o in outcomes if o.startswith("hanging")), outcomes
