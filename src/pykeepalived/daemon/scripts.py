"""Running the user's scripts (track scripts, notify scripts) the way keepalived does.

keepalived runs a script directly when its first word is an executable file and
hands anything else to /bin/sh; every script gets its own process group (so
that a timeout can kill the whole tree), a cleaned environment, and the
configured user. Notify scripts are fire-and-forget; track scripts are awaited
with a timeout and count as failed when they overrun.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
from dataclasses import dataclass

from ..config.model import Script

log = logging.getLogger("pykeepalived.scripts")

_SHELL_CHARS = set("<>|&;$`()*?[]~{}\"'\\")
_DROPPED_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH", "ENV", "BASH_ENV")
SCRIPT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ScriptOutcome:
    """How a run ended: exit status, or timed out, or could not start."""

    status: int | None
    timed_out: bool = False
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.status == 0 and not self.timed_out


def command_line(script: Script, extra_args: tuple[str, ...] = ()) -> list[str]:
    """argv to exec: direct when the first word is a program, else through /bin/sh."""
    argv = [*script.argv, *extra_args]
    first = script.argv[0] if script.argv else ""
    if any(ch in _SHELL_CHARS for word in script.argv for ch in word) or not first:
        return ["/bin/sh", "-c", " ".join([*script.argv, *(shlex.quote(a) for a in extra_args)])]
    return argv


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.setdefault("PATH", SCRIPT_PATH)
    return env


class ScriptRunner:
    """Starts scripts as the configured user; remembers children so stop() can end them."""

    def __init__(self, default_user: str | None = None, default_group: str | None = None) -> None:
        self.default_user = default_user
        self.default_group = default_group
        self._children: set[asyncio.subprocess.Process] = set()
        self._tasks: set[asyncio.Task[ScriptOutcome]] = set()

    async def _spawn(self, script: Script, extra_args: tuple[str, ...]) -> asyncio.subprocess.Process:
        user = script.user or self.default_user
        group = script.group or self.default_group
        kwargs: dict[str, object] = {}
        if user and user != "root" and os.geteuid() == 0:
            kwargs["user"] = user
            if group:
                kwargs["group"] = group
        return await asyncio.create_subprocess_exec(
            *command_line(script, extra_args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=_environment(),
            start_new_session=True,
            **kwargs,  # type: ignore[arg-type]
        )

    async def run(self, script: Script, extra_args: tuple[str, ...] = (), timeout_s: float | None = None) \
            -> ScriptOutcome:
        """Run to completion (or timeout: SIGTERM, then SIGKILL to the process group)."""
        try:
            proc = await self._spawn(script, extra_args)
        except OSError as exc:
            return ScriptOutcome(None, error=f"cannot run {script.argv[0] if script.argv else '?'}: {exc}")
        self._children.add(proc)
        try:
            try:
                status = await asyncio.wait_for(proc.wait(), timeout_s)
            except asyncio.TimeoutError:
                _kill_group(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 1.0)
                except asyncio.TimeoutError:
                    _kill_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
                return ScriptOutcome(proc.returncode, timed_out=True)
            return ScriptOutcome(status)
        finally:
            self._children.discard(proc)

    def fire(self, script: Script, extra_args: tuple[str, ...] = (), timeout_s: float | None = None) -> None:
        """Start a notify script and forget it (its exit is reaped and logged at debug level)."""
        task = asyncio.get_running_loop().create_task(self.run(script, extra_args, timeout_s))
        self._tasks.add(task)

        def done(t: asyncio.Task[ScriptOutcome]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (outcome := t.result()).error:
                log.warning("%s", outcome.error)

        task.add_done_callback(done)

    async def wait_all(self, timeout_s: float) -> None:
        """Give running notify scripts (notify_stop among them) time to finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    def terminate_all(self) -> None:
        for proc in list(self._children):
            _kill_group(proc.pid, signal.SIGTERM)


def _kill_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
