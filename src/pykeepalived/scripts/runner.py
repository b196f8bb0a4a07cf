"""Running the user's scripts (track scripts, notify scripts) the way keepalived does.

keepalived runs a script directly when its first word is an executable file and
hands anything else to /bin/sh; every script gets its own process group (so
that a timeout can kill the whole tree), a cleaned environment, and the
configured user. Notify scripts are fire-and-forget; track scripts are awaited
with a timeout and count as failed when they overrun.

Before anything runs, every script is vetted (`config/script_rules.py`): a
`ScriptGate` holds the verdicts, computed once for the whole config at start
(a reload will build a new gate), and the runner execs the resolved path the
verdict names, or refuses a disabled script without starting anything.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import grp
import logging
import os
import pwd
import shlex
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from ..host.tuning import script_priority
from ..config.model import GlobalDefs, KeepalivedConfig, Script
from ..config import script_rules as sec

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
    disabled: bool = False       # vetting refused it: it never started

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


class ScriptStartError(Exception):
    """A script could not be started (no such program, unknown user or group); the message says why."""


def default_script_user(g: GlobalDefs, user_exists: bool | None = None) -> tuple[str | None, str | None]:
    """keepalived's default run-as user: script_user, else keepalived_script if it exists, else ourselves (root).

    Returns (user, group); (None, None) means "whoever we are". `user_exists`
    is for tests; by default the password database is asked.
    """
    exists = user_exists if user_exists is not None else _user_exists(sec.DEFAULT_USER)
    who = sec.run_as(None, None, g, exists) or sec.RunAs(None)
    return who.user, who.group


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _credentials(user: str | None, group: str | None) -> dict[str, object]:
    """create_subprocess_exec keywords that switch to user[:group] the way keepalived does.

    keepalived sets the gid to the given group, else to the user's own group,
    and leaves that gid as the only supplementary group: a script run as
    `nobody` must not keep root's group 0. Only root can switch; anyone else
    runs scripts as itself.
    """
    if not user or user == "root" or os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(user)
        gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid
    except KeyError as exc:
        raise ScriptStartError(f"unknown user or group {user}{':' + group if group else ''}") from exc
    return {"user": entry.pw_uid, "group": gid, "extra_groups": [gid]}


def _no_shebang_fallback(argv: Sequence[str], env: dict[str, str]) -> list[str] | None:
    """An executable file without #! is what execvp and keepalived's system() hand to /bin/sh."""
    import shutil  # here: at module level it mapped bz2's and lzma's libraries into every daemon (host/tuning.py)

    program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    return ["/bin/sh", program, *argv[1:]] if program else None


async def spawn_script(argv: Sequence[str], user: str | None = None, group: str | None = None) \
        -> asyncio.subprocess.Process:
    """Start argv directly (no shell) as user[:group], in a session and process group of its own.

    Its own process group lets a timeout kill the script's children too; stdio
    is /dev/null so that a chatty script can never block on a full pipe.
    Raises ScriptStartError.
    """
    env = _environment()
    credentials = _credentials(user, group)
    try:
        return await _exec(argv, env, credentials)
    except OSError as exc:
        fallback = _no_shebang_fallback(argv, env) if exc.errno == errno.ENOEXEC else None
        if fallback is None:
            raise ScriptStartError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        return await _exec(fallback, env, credentials)
    except OSError as exc:
        raise ScriptStartError(f"cannot run {argv[0]} with /bin/sh: {exc.strerror or exc}") from exc


async def _exec(argv: Sequence[str], env: dict[str, str], credentials: dict[str, object]) \
        -> asyncio.subprocess.Process:
    with script_priority():  # global_defs *_priority is the daemon's, not its scripts' (host/tuning.py)
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            **credentials,  # type: ignore[arg-type]
        )


async def finish_script(proc: asyncio.subprocess.Process, timeout_s: float | None, grace_s: float) -> ScriptOutcome:
    """Wait for the script; past timeout_s SIGTERM its process group, SIGKILL it grace_s later.

    Once the script has been told to stop, whatever is left of its group
    (children that ignored SIGTERM) gets SIGKILL too, as keepalived does, so
    that a timed-out check leaves no process behind.
    """
    try:
        return ScriptOutcome(await asyncio.wait_for(proc.wait(), timeout_s))
    except TimeoutError:
        pass
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        _kill_group(proc.pid, signal.SIGKILL)
        await proc.wait()
    _kill_group(proc.pid, signal.SIGKILL)
    return ScriptOutcome(proc.returncode, timed_out=True)


class ScriptGate:
    """The verdicts of one configuration, and the log lines they call for (each said once).

    Built at start from the whole config (`for_config`); a script met later
    (not in the config's list) is vetted on first use and remembered. A
    future reload builds a new gate from the new config.
    """

    def __init__(self, g: GlobalDefs, files: sec.ScriptFiles | None = None) -> None:
        if files is None:
            from ..host.facts import LocalHostFacts

            files = LocalHostFacts()
        self.global_defs = g
        self.files = files
        self._verdicts: dict[tuple[str, str | None, str | None], sec.ScriptVerdict] = {}
        self._said: set[tuple[str, str | None, str | None]] = set()

    @classmethod
    def for_config(cls, config: KeepalivedConfig, subsystem: str,
                   files: sec.ScriptFiles | None = None) -> ScriptGate:
        """Vet every script of `subsystem` ("vrrp" or "check") now, and log what keepalived logs at start."""
        gate = cls(config.global_defs, files)
        vetting = sec.vet_config(config, gate.files)
        for use, verdict in vetting.uses:
            if use.subsystem == subsystem:
                key = (use.script.argv[0], use.user, use.group)
                gate._verdicts[key] = verdict
                gate._say(key, verdict)
        for sub, insecure in vetting.violations():
            if sub == subsystem:
                log.warning("%s", sec.violation_message(sub, insecure))
        return gate

    def verdict(self, command: str, user: str | None, group: str | None) -> sec.ScriptVerdict:
        """The verdict for `command` with the script's own user (None: the default), vetting it if new."""
        key = (command, user, group if user else None)
        verdict = self._verdicts.get(key)
        if verdict is None:
            use = sec.ScriptUse(command, "", Script([command]), key[1], key[2])
            verdict = self._verdicts[key] = sec.vet_use(use, self.global_defs, self.files)
            self._say(key, verdict)
        return verdict

    def _say(self, key: tuple[str, str | None, str | None], verdict: sec.ScriptVerdict) -> None:
        if key in self._said or (verdict.runnable and not verdict.insecure and not verdict.searched):
            return
        self._said.add(key)
        if verdict.searched and verdict.runnable:
            log.info("Script '%s' found on PATH as '%s'; configure the full path", verdict.command,
                     verdict.exec_path)
        if not verdict.runnable or verdict.insecure:
            log.warning("%s", sec.describe(verdict))

    @functools.cached_property
    def default_user_exists(self) -> bool:
        """Whether keepalived_script exists: asked once, like the verdicts (not at every run of a track script)."""
        return self.files.user_ids(sec.DEFAULT_USER) is not None

    def run_as(self, user: str | None, group: str | None) -> tuple[str | None, str | None]:
        """The user[:group] to switch to for a script whose own user is `user` (None: the default)."""
        who = sec.run_as(user, group, self.global_defs, self.default_user_exists) or sec.RunAs(None)
        return who.user, who.group


def vetted_argv(argv: Sequence[str], verdict: sec.ScriptVerdict) -> list[str]:
    """argv with the first word replaced by the file vetting resolved (symlinks and PATH already followed)."""
    if verdict.exec_path is None or not argv:
        return list(argv)
    return [verdict.exec_path, *argv[1:]]


class ScriptDisabled(ScriptStartError):
    """Vetting disabled this script; it is never started."""


class ScriptRunner:
    """Starts scripts as the configured user; remembers children so stop() can end them.

    With a gate, every script is vetted first: a disabled one never starts
    (its run is a failure whose error says why), a runnable one is exec'd from
    the resolved path. Without a gate (tests of the mechanics) scripts run as
    given.
    """

    def __init__(self, default_user: str | None = None, default_group: str | None = None,
                 gate: ScriptGate | None = None) -> None:
        self.default_user = default_user
        self.default_group = default_group
        self.gate = gate
        self._children: set[asyncio.subprocess.Process] = set()
        self._tasks: set[asyncio.Task[ScriptOutcome]] = set()

    @classmethod
    def for_config(cls, config: KeepalivedConfig, subsystem: str) -> ScriptRunner:
        """The runner a daemon uses: scripts vetted now, at start (keepalived's rules), and as their user."""
        return cls(gate=ScriptGate.for_config(config, subsystem))

    def prepare(self, script: Script, extra_args: tuple[str, ...] = ()) -> tuple[list[str], str | None, str | None]:
        """argv, user and group to start `script` with; raises ScriptDisabled for a vetted-out script."""
        if not script.argv:
            raise ScriptStartError("empty command")
        if self.gate is None:
            return (command_line(script, extra_args), script.user or self.default_user,
                    script.group or self.default_group)
        verdict = self.gate.verdict(script.argv[0], script.user, script.group)
        if not verdict.runnable:
            raise ScriptDisabled(sec.describe(verdict))
        user, group = self.gate.run_as(script.user, script.group)
        resolved = Script(vetted_argv(script.argv, verdict), script.user, script.group, script.location)
        return command_line(resolved, extra_args), user, group

    async def run(self, script: Script, extra_args: tuple[str, ...] = (), timeout_s: float | None = None) \
            -> ScriptOutcome:
        """Run to completion (or timeout: SIGTERM, then SIGKILL to the process group)."""
        try:
            argv, user, group = self.prepare(script, extra_args)
            proc = await spawn_script(argv, user, group)
        except ScriptStartError as exc:
            return ScriptOutcome(None, error=str(exc), disabled=isinstance(exc, ScriptDisabled))
        self._children.add(proc)
        try:
            return await finish_script(proc, timeout_s, 1.0)
        finally:
            self._children.discard(proc)

    def fire(self, script: Script, extra_args: tuple[str, ...] = (), timeout_s: float | None = None) -> None:
        """Start a notify script and forget it (a start failure is logged; a disabled script was logged at start)."""
        task = asyncio.get_running_loop().create_task(self.run(script, extra_args, timeout_s))
        self._tasks.add(task)

        def done(t: asyncio.Task[ScriptOutcome]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (outcome := t.result()).error and not outcome.disabled:
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
