"""Script vetting: may this script run, as whom, from which file? keepalived 2.2.7's rules, without I/O.

keepalived (lib/notify.c, check_script_secure) vets every script once, at
start and again at each reload, and our rules are the same:

- A first word of the form `</path` is a file test handed to the shell, not a
  program: nothing to vet.
- A bare name is looked up on PATH (a regular file the run-as user may
  execute); then the path is resolved through every symlink. The script runs
  from the resolved path (keeping the configured file name when the resolved
  directory holds that name for the same file), so swapping a symlink later
  changes nothing.
- A file its user may not execute is disabled.
- Only scripts that run with root's power need protection: run as uid 0 or
  gid 0, or a set-uid-root/set-gid-root program. For them the file and every
  directory above it (each path prefix, from `/`) must be owned by root, and
  neither writable by a group other than root's nor by everyone. A sticky
  directory owned by root (like /tmp) passes whatever its write bits, since
  nobody can replace another user's file in it. A prefix that is not a
  directory, or a final element that is neither a file nor a symlink, disables
  the script outright.
- With `enable_script_security` an unsafe script is disabled: it never runs.
  Without it the script runs and keepalived's SECURITY VIOLATION warning says
  so. A script run as a non-root user (and non-root group) is not checked: it
  cannot do more than that user could anyway.
- With `enable_script_security` and no `script_user`, scripts without a user
  of their own run as `keepalived_script`; when that user does not exist they
  are disabled (keepalived 2.2.7 does not fall back to root).

The file system is reached through the `ScriptFiles` protocol (`host/facts.py`
answers from the real one), so `vet_script` and `unsafe_path` are pure and
unit-tested on made-up stat results.
"""

from __future__ import annotations

import enum
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from .model import GlobalDefs, KeepalivedConfig, MiscCheck, Script

DEFAULT_USER = "keepalived_script"


@dataclass(frozen=True)
class FileStat:
    """The parts of a stat result the rules look at."""

    mode: int
    uid: int
    gid: int
    dev: int = 0
    ino: int = 0


class ScriptFiles(Protocol):
    """What vetting asks the machine. None means "cannot stat/resolve" (missing, no access, a loop)."""

    def lstat(self, path: str) -> FileStat | None: ...

    def stat(self, path: str) -> FileStat | None: ...

    def realpath(self, path: str) -> str | None: ...

    def search_path(self) -> list[str]: ...

    def user_ids(self, name: str) -> tuple[int, int] | None: ...

    def group_id(self, name: str) -> int | None: ...

    def our_ids(self) -> tuple[int, int]: ...


class Status(enum.Enum):
    OK = "ok"                    # runs (perhaps insecure, when script security is off)
    FILE_TEST = "file test"      # `</path`: handed to the shell, nothing to vet
    NOT_FOUND = "not found"      # no such file, not on PATH, cannot be resolved
    NOT_EXECUTABLE = "not executable"
    WRONG_TYPE = "wrong type"    # a path element of the wrong kind: disabled whatever the setting
    UNSAFE = "unsafe"            # writable by someone other than root, with script security on
    NO_USER = "no user"          # the run-as user or group does not exist


@dataclass(frozen=True)
class ScriptVerdict:
    """What vetting decided for one command run as one user."""

    command: str                 # the first word as configured
    status: Status
    reason: str = ""             # our words, for the log and -t
    exec_path: str | None = None  # what to exec instead of the first word
    uid: int | None = None
    gid: int | None = None
    insecure: bool = False       # an unsafe path was found (the script may still run: security off)
    searched: bool = False       # found by a PATH search (keepalived asks for a full path)

    @property
    def runnable(self) -> bool:
        return self.status in (Status.OK, Status.FILE_TEST)

    @property
    def is_script(self) -> bool:
        """keepalived's SC_ISSCRIPT: a file was found; what makes SECURITY VIOLATION apply."""
        return self.status in (Status.OK, Status.NOT_EXECUTABLE, Status.WRONG_TYPE, Status.UNSAFE)


@dataclass(frozen=True)
class PathProblem:
    path: str
    wrong_type: bool
    why: str


def is_executable(st: FileStat, uid: int, gid: int) -> bool:
    """keepalived's mode-bit test (root needs any x bit; others the bit of their class)."""
    if uid == 0:
        return bool(st.mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.uid:
        return bool(st.mode & stat.S_IXUSR)
    if gid == st.gid:
        return bool(st.mode & stat.S_IXGRP)
    return bool(st.mode & stat.S_IXOTH)


def needs_protection(st: FileStat, uid: int, gid: int) -> bool:
    """Does the script run with root's power (as uid or gid 0, or set-uid/gid root)?"""
    if uid == 0 or gid == 0:
        return True
    if st.uid == 0 and st.mode & stat.S_IXUSR and st.mode & stat.S_ISUID:
        return True
    return bool(st.gid == 0 and st.mode & stat.S_IXGRP and st.mode & stat.S_ISGID)


def path_prefixes(path: str) -> list[str]:
    """`/a/b/c` -> `/`, `/a`, `/a/b`, `/a/b/c`: every element vetting looks at."""
    parts = [p for p in path.split("/") if p]
    out = ["/"]
    for i in range(len(parts)):
        out.append("/" + "/".join(parts[: i + 1]))
    return out if path != "/" else ["/"]


def unsafe_path(elements: Sequence[tuple[str, FileStat]]) -> PathProblem | None:
    """The first element (lstat results, `/` first, the file last) that makes a root script unsafe.

    Directories must be directories; the last element a regular file or a
    symlink. Each must be owned by root; a regular file or a non-sticky
    directory must not be writable by a non-root group or by everyone.
    """
    last = len(elements) - 1
    for index, (path, st) in enumerate(elements):
        if index < last and not stat.S_ISDIR(st.mode):
            return PathProblem(path, True, "not a directory")
        if index == last and not (stat.S_ISREG(st.mode) or stat.S_ISLNK(st.mode)):
            return PathProblem(path, True, "not a regular file")
        if st.uid != 0:
            return PathProblem(path, False, f"owned by uid {st.uid}")
        sticky_dir = stat.S_ISDIR(st.mode) and st.mode & stat.S_ISVTX
        if stat.S_ISLNK(st.mode) or sticky_dir:
            continue
        if st.mode & stat.S_IWOTH:
            return PathProblem(path, False, "writable by everyone")
        if st.gid != 0 and st.mode & stat.S_IWGRP:
            return PathProblem(path, False, f"writable by group {st.gid}")
    return None


def is_file_test(command: str) -> bool:
    """keepalived's `</path` form (white space allowed between `<` and `/`)."""
    return command.startswith("<") and command[1:].lstrip(" \t").startswith("/")


@dataclass(frozen=True)
class RunAs:
    """Who a script runs as, by name as configured (None: ourselves)."""

    user: str | None
    group: str | None = None


def run_as(own_user: str | None, own_group: str | None, g: GlobalDefs, default_user_exists: bool) -> RunAs | None:
    """keepalived's choice: the script's own user, else script_user, else keepalived_script if it
    exists, else ourselves -- except that with script security and no such user, None (disabled)."""
    if own_user:
        return RunAs(own_user, own_group)
    if g.script_user:
        return RunAs(g.script_user, g.script_group)
    if default_user_exists:
        return RunAs(DEFAULT_USER)
    return None if g.enable_script_security else RunAs(None)


def resolve_ids(who: RunAs, files: ScriptFiles) -> tuple[int, int] | str:
    """(uid, gid) for a RunAs, or why it cannot be had."""
    if who.user is None:
        return files.our_ids()
    ids = files.user_ids(who.user)
    if ids is None:
        return f"user {who.user} does not exist"
    uid, gid = ids
    if who.group:
        group = files.group_id(who.group)
        if group is None:
            return f"group {who.group} does not exist"
        gid = group
    return uid, gid


def _search(name: str, uid: int, gid: int, files: ScriptFiles) -> tuple[str | None, bool]:
    """A bare name on PATH: the first regular file the user may execute; (None, denied?) if none."""
    denied = False
    for directory in files.search_path():
        candidate = f"{directory.rstrip('/')}/{name}" if directory else name
        st = files.stat(candidate)
        if st is None:
            continue
        if stat.S_ISREG(st.mode) and is_executable(st, uid, gid):
            return candidate, False
        denied = True
    return None, denied


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _dirname(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def vet_script(command: str, uid: int, gid: int, security: bool, files: ScriptFiles) -> ScriptVerdict:
    """The verdict for running `command` (a script's first word) as uid:gid."""
    if is_file_test(command):
        return ScriptVerdict(command, Status.FILE_TEST, uid=uid, gid=gid)
    searched = False
    path = command
    if "/" not in command:
        found, denied = _search(command, uid, gid, files)
        if found is None:
            why = "no permission to run it from PATH" if denied else "not found on PATH"
            return ScriptVerdict(command, Status.NOT_FOUND, why, uid=uid, gid=gid)
        path, searched = found, True
    real = files.realpath(path)
    if real is None:
        return ScriptVerdict(command, Status.NOT_FOUND, "cannot be found or accessed", uid=uid, gid=gid)
    exec_path, also = real, None
    if _basename(real) != _basename(path):
        # keep the configured file name (some programs act on their name) if it is the same file there
        named = f"{_dirname(real).rstrip('/')}/{_basename(path)}"
        real_st, named_st = files.stat(real), files.stat(named)
        if real_st is not None and named_st is not None and (real_st.dev, real_st.ino) == (named_st.dev, named_st.ino):
            exec_path, also = named, real
    st = files.stat(also or exec_path)
    if st is None:
        return ScriptVerdict(command, Status.NOT_FOUND, "cannot be accessed", exec_path, uid, gid)
    ok = ScriptVerdict(command, Status.OK, exec_path=exec_path, uid=uid, gid=gid, searched=searched)
    if not is_executable(st, uid, gid):
        return replace(ok, status=Status.NOT_EXECUTABLE, reason=f"not executable for uid:gid {uid}:{gid}")
    if not needs_protection(st, uid, gid):
        return ok
    for checked in (exec_path, also):
        if checked is None:
            continue
        elements = []
        for prefix in path_prefixes(checked):
            el = files.lstat(prefix)
            if el is None:
                return replace(ok, status=Status.NOT_FOUND, reason=f"cannot examine {prefix}")
            elements.append((prefix, el))
        problem = unsafe_path(elements)
        if problem is None:
            continue
        why = f"{problem.path} is {problem.why}"
        if problem.wrong_type:
            return replace(ok, status=Status.WRONG_TYPE, reason=why)
        # with script security off the script still runs, marked insecure (SECURITY VIOLATION)
        return replace(ok, status=Status.UNSAFE if security else Status.OK, reason=why, insecure=True)
    return ok


# ------------------------------------------------------------------ the whole configuration
@dataclass(frozen=True)
class ScriptUse:
    """One place a config runs a script: what it is (for messages), the Script, its own user."""

    kind: str                    # "vrrp_script chk", "notify_master of VI_1", "MISC_CHECK of [10.0.0.2]:80"
    subsystem: str               # "main", "vrrp" or "check": keepalived vets and warns per subsystem
    script: Script
    user: str | None
    group: str | None


@dataclass
class Vetting:
    """Every script use of a config with its verdict: the one step from a config to verdicts.

    `vet_config` builds it at start; a reload builds a new one from the new
    config. ScriptRunner keeps the verdicts and refuses what they disable.
    """

    uses: list[tuple[ScriptUse, ScriptVerdict]] = field(default_factory=list)
    security: bool = False

    def violations(self) -> Iterator[tuple[str, bool]]:
        """(subsystem, any insecure) for each subsystem that runs scripts without script security."""
        if self.security:
            return
        for subsystem in ("main", "vrrp", "check"):
            found = [v for u, v in self.uses if u.subsystem == subsystem and v.is_script]
            if found:
                yield subsystem, any(v.insecure for v in found)


def script_uses(cfg: KeepalivedConfig) -> list[ScriptUse]:
    """Every script the configuration may run, with its own user (None: the default)."""
    uses: list[ScriptUse] = []
    g = cfg.global_defs

    def add(kind: str, subsystem: str, script: Script | None, user: str | None = None,
            group: str | None = None) -> None:
        if script is not None and script.argv:
            own_user = user or script.user
            uses.append(ScriptUse(kind, subsystem, script, own_user, group if user else script.group))

    add("startup_script", "main", g.startup_script)
    add("shutdown_script", "main", g.shutdown_script)
    if cfg.vrrp_instances:
        for name, scr in cfg.vrrp_scripts.items():
            add(f"vrrp_script {name}", "vrrp", scr.script, scr.user, scr.group)
        for kind_name, objs in (("vrrp_instance", cfg.vrrp_instances), ("vrrp_sync_group", cfg.sync_groups)):
            for obj_name, obj in objs.items():
                for keyword, value in obj.notify_scripts():
                    add(f"{keyword} of {kind_name} {obj_name}", "vrrp", value)
        add("notify_fifo_script", "vrrp", g.notify_fifo_script)
        add("vrrp_notify_fifo_script", "vrrp", g.vrrp_notify_fifo_script)
    if cfg.virtual_servers:
        for vs in cfg.virtual_servers:
            add("quorum_up", "check", vs.quorum_up)
            add("quorum_down", "check", vs.quorum_down)
            for rs in vs.real_servers:
                add(f"notify_up of real server {rs.address}", "check", rs.notify_up)
                add(f"notify_down of real server {rs.address}", "check", rs.notify_down)
                for checker in rs.checkers:
                    if isinstance(checker, MiscCheck) and checker.misc_path is not None:
                        add(f"MISC_CHECK of real server {rs.address}", "check", checker.misc_path,
                            checker.user, checker.group)
        add("notify_fifo_script", "check", g.notify_fifo_script)
        add("lvs_notify_fifo_script", "check", g.lvs_notify_fifo_script)
    return uses


def vet_use(use: ScriptUse, g: GlobalDefs, files: ScriptFiles) -> ScriptVerdict:
    """The verdict for one use: its run-as user, then the file rules."""
    command = use.script.argv[0]
    who = run_as(use.user, use.group, g, files.user_ids(DEFAULT_USER) is not None)
    if who is None:
        return ScriptVerdict(command, Status.NO_USER,
                             f"default user {DEFAULT_USER} does not exist (enable_script_security without script_user)")
    ids = resolve_ids(who, files)
    if isinstance(ids, str):
        return ScriptVerdict(command, Status.NO_USER, ids)
    return vet_script(command, ids[0], ids[1], g.enable_script_security, files)


def vet_config(cfg: KeepalivedConfig, files: ScriptFiles) -> Vetting:
    """Vet every script of a configuration (at start; a reload calls it again on the new config)."""
    g = cfg.global_defs
    return Vetting([(use, vet_use(use, g, files)) for use in script_uses(cfg)], g.enable_script_security)


def describe(verdict: ScriptVerdict) -> str:
    """One line for the log: what is wrong with the script and what happens to it."""
    name = verdict.exec_path or verdict.command
    if verdict.status is Status.UNSAFE:
        return f"Unsafe permissions for script '{name}' ({verdict.reason}) - disabling it"
    if verdict.status is Status.OK and verdict.insecure:
        return f"Unsafe permissions for script '{name}' ({verdict.reason}); enable_script_security would disable it"
    if verdict.status is Status.WRONG_TYPE:
        return f"Script '{name}' disabled: {verdict.reason}"
    if verdict.status is Status.NOT_EXECUTABLE:
        return f"Script '{name}' is {verdict.reason} - disabling it"
    if verdict.status is Status.NOT_FOUND:
        return f"Script '{verdict.command}' {verdict.reason} - disabling it"
    if verdict.status is Status.NO_USER:
        return f"Script '{verdict.command}' disabled: {verdict.reason}"
    return f"Script '{name}' accepted"


def violation_message(subsystem: str, insecure: bool) -> str:
    what = {"check": "check scripts", "main": "start/shutdown scripts"}.get(subsystem, "scripts")
    extra = " There are insecure scripts." if insecure else ""
    return f"SECURITY VIOLATION - {what} are being executed but enable_script_security is not set.{extra}"
