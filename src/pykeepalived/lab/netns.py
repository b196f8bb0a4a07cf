"""Network namespaces as lab hosts, driven through iproute2.

We shell out to `ip` rather than talk netlink ourselves: the lab is test and
benchmark scaffolding, `ip` is what a person would type to reproduce a failure
by hand, and `ip netns exec` already does the mount-namespace dance that makes
`/sys` and `/etc/netns/NAME` right for the programs we start inside.

Every subprocess has a timeout so that a wedged daemon or a kernel hiccup turns
into a `LabError` with a message instead of a hung test run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pykeepalived.errors import PyKeepalivedError

NETNS_DIR = Path("/run/netns")
FRR_TMP = Path("/var/tmp/frr")

# What Popen accepts for stdin/stdout/stderr.
StdStream = int | IO[Any] | None


class LabError(PyKeepalivedError):
    """The lab could not build, drive or tear down part of a topology."""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_cmd(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout_s: float = 10.0,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command with a timeout; failures become `LabError` carrying stderr.

    Output is captured as text because every caller either parses it (JSON from
    `ip -j`) or puts it into an error message.
    """
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout_s:g} s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = _tail(proc.stderr) or _tail(proc.stdout) or "(no output)"
        raise LabError(f"exit {proc.returncode}: {' '.join(argv)}\n{detail}")
    return proc


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie holds no resources we care about)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0:1]
    return state != ["Z"] and state != ["X"]


def signal_pid(pid: int, sig: int) -> None:
    """Send `sig` to `pid`, ignoring a process that is already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_process_group(proc: subprocess.Popen[Any], wait_s: float = 5.0) -> None:
    """SIGKILL the group `proc` leads (Netns.popen starts a session) and reap it; a gone one is fine.

    Waits at most `wait_s` for the leader: a load generator killed mid-run
    (stress-ng, wrk, a client script) must not hold the caller up.
    """
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        pass


def wait_pids_gone(pids: Sequence[int], timeout_s: float) -> bool:
    """Poll until none of `pids` is alive; False if some survive `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not any(pid_alive(p) for p in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _remove_frr_crash_dirs(pids: Sequence[int]) -> None:
    """Remove /var/tmp/frr/<daemon>.<pid>/ of FRR daemons we just killed.

    FRR daemons keep a crash-log buffer there and only delete it on a clean
    exit. A namespace deleted under a running FRR peer (a test that failed
    before closing its peers) would otherwise leave one directory per daemon.
    """
    for pid in pids:
        for path in FRR_TMP.glob(f"*.{pid}"):
            if not pid_alive(pid):
                shutil.rmtree(path, ignore_errors=True)


class Netns:
    """One named network namespace: a lab host, or the switch that joins them."""

    name: str

    def __init__(self, name: str) -> None:
        if not name or "/" in name or len(name) > 64:
            raise LabError(f"bad namespace name {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        """`ip netns add` and bring `lo` up (daemons and pings to self need it)."""
        if self.exists():
            raise LabError(f"network namespace {self.name} already exists (left over from another run?)")
        run_cmd(["ip", "netns", "add", self.name])
        try:
            self.ip("link", "set", "lo", "up")
        except LabError:
            self.delete()
            raise

    def pids(self) -> list[int]:
        """Processes whose network namespace is this one (`ip netns pids`)."""
        if not self.exists():
            return []
        out = run_cmd(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(tok) for tok in out.split() if tok.isdigit()]

    def delete(self) -> None:
        """Kill every process still inside, then remove the namespace; safe to call twice.

        Killing first matters: a daemon left running keeps the namespace (and its
        interfaces, and thus the other end of every veth) alive after `ip netns del`,
        and would keep talking VRRP on a segment the next test reuses.
        """
        if not self.exists():
            return
        killed: list[int] = []
        for _ in range(3):
            pids = [p for p in self.pids() if p != os.getpid()]
            if not pids:
                break
            for pid in pids:
                signal_pid(pid, signal.SIGKILL)
            killed += pids
            wait_pids_gone(pids, 2.0)
        _remove_frr_crash_dirs(killed)
        run_cmd(["ip", "netns", "del", self.name], check=False)
        if self.exists():
            raise LabError(f"could not delete network namespace {self.name}")

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: list[str],
        *,
        check: bool = True,
        timeout_s: float = 10.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the namespace and wait for it (`ip netns exec`)."""
        return run_cmd(self.argv(argv), check=check, timeout_s=timeout_s, input=input)

    def popen(
        self,
        argv: list[str],
        *,
        stdout: StdStream = subprocess.DEVNULL,
        stderr: StdStream = subprocess.STDOUT,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` inside the namespace without waiting.

        `ip netns exec` execs the program, so the Popen pid is the program's own.
        It gets a new session (and process group) so that the caller can signal
        the program together with every child it forks.
        """
        try:
            return subprocess.Popen(
                self.argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise LabError(f"cannot start {' '.join(argv)} in {self.name}: {exc}") from exc

    def ip(self, *args: str, timeout_s: float = 10.0) -> str:
        """`ip -n NAME ARGS...`; cheaper than `ip netns exec` (no new mount namespace)."""
        return run_cmd(["ip", "-n", self.name, *args], timeout_s=timeout_s).stdout

    def ip_json(self, *args: str) -> list[dict[str, Any]]:
        """`ip -j -n NAME ARGS...`, parsed."""
        out = run_cmd(["ip", "-j", "-n", self.name, *args]).stdout.strip()
        if not out:
            return []
        data = json.loads(out)
        if not isinstance(data, list):
            raise LabError(f"unexpected output of ip -j {' '.join(args)}: {out[:200]}")
        return data

    def sysctl(self, key: str, value: str) -> None:
        """Set one sysctl inside the namespace (`net.*` keys are per namespace)."""
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])
