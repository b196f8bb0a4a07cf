"""SMTP_CHECK: the real server is healthy when it greets with 220, answers HELO with 250 and replies to QUIT.

The conversation itself (reply parsing, what to send next, the verdict) lives
in the sans-IO `smtp_session`; this module only moves its bytes, with
keepalived's timers: connect_timeout bounds the connect and then each step
(the greeting, HELO and its reply, QUIT and its reply) separately, as
keepalived re-arms its read and write timers for every step.

The port is the checker's connect_port, else the real server's; when neither
gives one (a fwmark service) we use 25. keepalived has no such default: it
would connect to port 0 and fail every check.

Deprecated `host {}` sub-blocks: keepalived turns `SMTP_CHECK { host {...}
host {...} }` into one checker per host, each with its own connection options
(they do not inherit the SMTP_CHECK block's bindto etc.), and keeps a checker
for the SMTP_CHECK block itself only when that block sets a connection option
of its own. `smtp_targets(checker, rs, vs)` returns those targets in
keepalived's order; the plan code makes one probe per target with
`make_probe(checker, target, ctx)`, each an independent checker (own retry
count, own up/down state).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from ..config.checker_timing import inherited_connect_timeout_s, smtp_host_connect_timeout_s
from ..config.model import CheckerBase, RealServer, SmtpCheck, VirtualServer
from .connect import ConnectFailed, close_writer, open_stream
from .probe import OK, ProbeResult, Target, failed
from .context import target_for
from .smtp_session import DEFAULT_HELO, Send, SmtpSession, Step, Verdict

DEFAULT_PORT = 25
READ_SIZE = 4096


@dataclass
class SmtpProbe:
    """One SMTP_CHECK attempt against one target; the session decides, this only carries bytes and timers."""

    target: Target
    helo_name: str = DEFAULT_HELO
    kind: str = "SMTP_CHECK"

    async def run(self) -> ProbeResult:
        try:
            reader, writer = await open_stream(self.target)
        except ConnectFailed as exc:
            return failed(str(exc))
        try:
            return await self._converse(reader, writer)
        finally:
            await close_writer(writer)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> ProbeResult:
        session = SmtpSession(self.helo_name)
        timeout = self.target.connect_timeout_s
        step: Step = None
        while not isinstance(step, Verdict):
            awaited = session.stage.value
            try:
                async with asyncio.timeout(timeout):
                    step = await _exchange(session, step, reader, writer)
            except TimeoutError:
                return failed(f"timed out after {timeout:g} s waiting for {awaited}")
            except OSError as exc:
                return failed(f"connection error waiting for {awaited}: {exc.strerror or exc}")
        return OK if step.ok else failed(step.reason)


async def _exchange(
    session: SmtpSession, step: Step, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Send | Verdict:
    """One step: send the pending command (if any), then read until the session has its reply.

    Lines the server sent ahead (already buffered in the session) count
    before anything new is read: the byte stream is taken as it came.
    """
    if isinstance(step, Send):
        writer.write(step.data)
        await writer.drain()
    following = session.feed(b"")
    while following is None:
        data = await reader.read(READ_SIZE)
        following = session.feed(data) if data else session.eof()
    return following


def with_default_port(target: Target) -> Target:
    return target if target.port is not None else dataclasses.replace(target, port=DEFAULT_PORT)


def make_probe(checker: CheckerBase, target: Target, ctx: object) -> SmtpProbe:
    """One probe for one target (the SMTP_CHECK's own, or one of `smtp_targets`)."""
    helo = checker.helo_name if isinstance(checker, SmtpCheck) else None
    return SmtpProbe(with_default_port(target), helo or DEFAULT_HELO)


def smtp_targets(checker: SmtpCheck, rs: RealServer, vs: VirtualServer) -> list[Target]:
    """Every target keepalived checks for this SMTP_CHECK: its own and one per `host {}` block.

    Without host blocks this is just the checker's own target. With them, the
    block's own target comes first only if it sets a connection option (see
    `sets_connection_options`), then one target per host: the host's
    connect_ip/connect_port over the real server's address and port, its own
    bind options, and its connect_timeout else the real server's else the
    virtual server's. (keepalived 2.2.7 leaves a host without connect_timeout
    at a zero timeout, a bug we do not copy.)
    """
    own = with_default_port(target_for(checker, rs))
    if not checker.hosts:
        return [own]
    hosts = [
        dataclasses.replace(
            with_default_port(target_for(host, rs)),
            connect_timeout_s=smtp_host_connect_timeout_s(host, rs, vs),
        )
        for host in checker.hosts
    ]
    return [own, *hosts] if sets_connection_options(checker, rs, vs) else hosts


def sets_connection_options(checker: CheckerBase, rs: RealServer, vs: VirtualServer) -> bool:
    """Whether the SMTP_CHECK block itself sets connect_ip, connect_port, bindto... (then it is a checker too).

    Config completion copies the real server's port and the inherited
    connect_timeout into every checker, so we cannot tell those apart from
    values written in the block: a connect_port equal to the real server's
    port, or a connect_timeout equal to the inherited one, counts as not set.
    Only there we differ: keepalived would also check the real server itself.
    """
    return (
        checker.connect_ip is not None
        or checker.bindto is not None
        or checker.bind_port is not None
        or bool(checker.bind_if)
        or bool(checker.fwmark)
        or checker.connect_port not in (None, rs.port)
        or checker.connect_timeout_s not in (None, inherited_connect_timeout_s(rs, vs))
    )
