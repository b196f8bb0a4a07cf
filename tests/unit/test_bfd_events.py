"""A VRRP or checker process that starts after a session came Up learns it from the BFD process's answer."""

from __future__ import annotations

import asyncio
import random

from pykeepalived.bfd import events
from pykeepalived.bfd.packet import State
from pykeepalived.bfd.service import BfdService
from pykeepalived.config import read_config_text

CONF = """
bfd_instance up_one { neighbor_ip 192.0.2.2 }
bfd_instance down_one { neighbor_ip 192.0.2.3 }
bfd_instance checker_only { neighbor_ip 192.0.2.4
  checker
}
"""


def test_hello_is_answered_with_the_state_of_each_session() -> None:
    async def scenario() -> list[tuple[str, bool]]:
        key = random.randrange(10**9, 2 * 10**9)  # no other test's daemon listens under this
        service = BfdService(read_config_text(CONF).config, key)
        service.sessions["up_one"].core.state = State.UP
        service.sessions["checker_only"].core.state = State.UP
        loop = asyncio.get_running_loop()
        ctl = events.open_socket(events.address(key, "bfd"))
        service._ctl = ctl
        loop.add_reader(ctl.fileno(), service._on_control)
        got: list[tuple[str, bool]] = []
        try:
            async def first() -> None:
                async for event in events.session_events(key, "vrrp"):
                    got.append(event)
                    if len(got) == 2:
                        return
            await asyncio.wait_for(first(), 5.0)
        finally:
            loop.remove_reader(ctl.fileno())
            ctl.close()
        return got

    assert asyncio.run(scenario()) == [("up_one", True), ("down_one", False)]  # not the checker's session


def test_events_reach_only_listening_processes() -> None:
    sock = events.open_socket(events.address(random.randrange(10**9, 2 * 10**9), "x"))
    try:
        assert not events.send_to(sock, events.address(1, "nobody-here"), events.encode_event("b", True))
    finally:
        sock.close()
