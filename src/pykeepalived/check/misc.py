"""MISC_CHECK: the real server is healthy when the user's program says so by its exit status.

The program runs as keepalived runs it: argv exec'd directly (a shell only if
the configured command is itself one, or for keepalived's `</path` file-test
form), as the MISC_CHECK `user`, else global script_user, else
keepalived_script if that user exists, else root; in a process group of its
own so that at misc_timeout (default: the virtual server's delay_loop) the
whole group gets SIGTERM, and SIGKILL two seconds later. Its output goes to
/dev/null, so a chatty script cannot block on a full pipe.

The program is vetted when the probe is built, at start, with keepalived's
rules (`config/script_rules.py`): a program that is missing, not
executable, or (with enable_script_security) writable by someone other than
root while it runs as root, never runs; every attempt fails with the reason.
keepalived drops such a checker instead, which leaves the real server up
without a check; failing keeps the server out until the script is fixed.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from dataclasses import dataclass

from ..config.checker_timing import misc_timeout_s
from ..config.model import GlobalDefs, MiscCheck
from ..config import script_rules as sec
from ..scripts.runner import ScriptStartError, default_script_user, finish_script, spawn_script, vetted_argv
from .outcomes import misc_verdict
from .probe import ProbeResult, Target
from .context import ProbeContext, UnsupportedChecker

# keepalived waits this long after SIGTERM before it sends SIGKILL
KILL_GRACE_S = 2.0


@dataclass
class MiscProbe:
    """One run of the program per attempt; `weight_offset` always set (0 unless misc_dynamic says otherwise)."""

    target: Target
    argv: list[str]
    timeout_s: float
    dynamic: bool
    rs_weight: int
    user: str | None = None
    group: str | None = None
    kill_grace_s: float = KILL_GRACE_S
    kind: str = "MISC_CHECK"
    disabled: str | None = None  # why vetting refused the program; it then never runs

    async def run(self) -> ProbeResult:
        if self.disabled is not None:
            return ProbeResult(False, self.disabled, 0)
        try:
            proc = await spawn_script(self.argv, self.user, self.group)
        except ScriptStartError as exc:
            return ProbeResult(False, str(exc), 0)
        try:
            outcome = await finish_script(proc, self.timeout_s, self.kill_grace_s)
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        return misc_verdict(outcome.status, dynamic=self.dynamic, rs_weight=self.rs_weight,
                            stopped_by_us=outcome.timed_out, timeout_s=self.timeout_s)


def _kill_group(pgid: int) -> None:
    """A cancelled probe (the service stopping) takes its script with it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def misc_argv(argv: list[str]) -> list[str]:
    """What to exec: the configured words as they are, except keepalived's `</path ...` file test.

    keepalived hands a command whose first word starts with `<` or `>` to
    /bin/sh with that word as written and every other word single-quoted.
    """
    if argv and argv[0][:1] in ("<", ">"):
        return ["/bin/sh", "-c", " ".join([argv[0], *(shlex.quote(word) for word in argv[1:])])]
    return list(argv)


def run_as(checker: MiscCheck, g: GlobalDefs) -> tuple[str | None, str | None]:
    """The user[:group] the program runs as (None: as ourselves)."""
    if checker.user:
        return checker.user, checker.group
    return default_script_user(g)


def vet(checker: MiscCheck, g: GlobalDefs, files: sec.ScriptFiles | None = None) -> sec.ScriptVerdict:
    """keepalived's script vetting for the program, as the user it runs as."""
    if files is None:
        from ..host.facts import LocalHostFacts

        files = LocalHostFacts()
    assert checker.misc_path is not None
    use = sec.ScriptUse("MISC_CHECK", "check", checker.misc_path, checker.user, checker.group)
    return sec.vet_use(use, g, files)


def make_probe(checker: MiscCheck, target: Target, ctx: ProbeContext) -> MiscProbe:
    if checker.misc_path is None or not checker.misc_path.argv:
        where = f"{checker.location}: " if checker.location else ""
        raise UnsupportedChecker(f"{where}MISC_CHECK has no misc_path")
    vs, rs = ctx.virtual_server, ctx.real_server
    user, group = run_as(checker, ctx.global_defs)
    verdict = vet(checker, ctx.global_defs)
    return MiscProbe(
        target=target,
        argv=misc_argv(vetted_argv(checker.misc_path.argv, verdict)),
        disabled=None if verdict.runnable else f"disabled: {sec.describe(verdict)}",
        timeout_s=misc_timeout_s(checker, vs),
        dynamic=checker.misc_dynamic,
        rs_weight=rs.weight if rs.weight is not None else vs.weight,
        user=user,
        group=group,
    )
