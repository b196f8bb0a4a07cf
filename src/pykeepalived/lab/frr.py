"""FRR daemons (zebra, bgpd, bfdd) of one lab router, in a host's namespace, with a directory of their own.

The ECMP lab's upstream router runs zebra, bgpd and (with BFD) bfdd; its
control speaker on a balancer runs `bgpd -Z` alone. Every path a daemon
would otherwise take from /etc/frr or /var/run/frr is given on its command
line (config -f, pid -i, zserv socket -z, vty sockets --vty_socket, bfdd's
control socket --bfdctl, log --log file:), with no TCP vty (-P 0), so any
number of instances run side by side without touching the machine's FRR,
as `FrrPeer` does for vrrpd.

FRR keeps /var/tmp/frr/<daemon>.<pid>/ (its crash-log buffer) and removes
it only on a clean exit: `stop()` and `kill()` remove those of their dead
daemons, and `crash_dirs_gone()` lets a caller check.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .netns import FRR_TMP, LabError, pid_alive, run_cmd
from .peers import FRR_SBIN, _Daemon, _start_daemon
from .topology import Host

STOP_TIMEOUT_S = 5.0
ZEBRA_START_TIMEOUT_S = 10.0


class FrrInstance:
    """Some FRR daemons of one router: one directory for their configs, sockets, pid files and logs.

    `start(daemon, conf, *extra)` writes the daemon's config and starts it;
    zebra must come first when the others need it (they connect to its
    zserv socket), and `start` returns only once zebra's sockets exist.
    """

    def __init__(self, host: Host, directory: Path) -> None:
        self.host = host
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.daemons: dict[str, _Daemon] = {}
        self._pids: list[tuple[str, int]] = []  # every daemon ever started here, for the crash dirs

    def __repr__(self) -> str:
        return f"FrrInstance({self.host.name}, dir={self.dir})"

    def conf_path(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.conf"

    def argv(self, daemon: str, *extra: str) -> list[str]:
        return [
            str(FRR_SBIN / daemon),
            # root, but in FRR's vty group: FRR refuses a user outside it
            "-u", "root", "-g", "frrvty",
            "-f", str(self.conf_path(daemon)),
            "-i", str(self.dir / f"{daemon}.pid"),
            "-z", str(self.dir / "zserv.api"),
            "--vty_socket", str(self.dir),
            "-P", "0",
            "--log", f"file:{self.dir / f'{daemon}.log'}",
            *extra,
        ]  # fmt: skip

    def start(self, daemon: str, conf: str, *extra: str) -> int:
        """Write `conf` and start `daemon` with `extra` flags; its pid."""
        if daemon in self.daemons and self.daemons[daemon].running():
            raise LabError(f"{daemon} is already running in {self.host.name}")
        self.conf_path(daemon).write_text(conf)
        if daemon == "bfdd":
            extra = ("--bfdctl", str(self.dir / "bfdd.sock"), *extra)  # its default /var/run/frr/bfdd.sock is shared
        d = _start_daemon(self.host, daemon, self.argv(daemon, *extra), self.dir / f"{daemon}.out")
        self.daemons[daemon] = d
        self._pids.append((daemon, d.pid))
        if daemon == "zebra":
            self._wait_zebra(d)
        return d.pid

    def _wait_zebra(self, zebra: _Daemon) -> None:
        deadline = time.monotonic() + ZEBRA_START_TIMEOUT_S
        while not ((self.dir / "zserv.api").exists() and (self.dir / "zebra.vty").exists()):
            if not zebra.running():
                raise LabError(f"zebra in {self.host.name} exited with {zebra.proc.returncode}:\n{self.log()}")
            if time.monotonic() >= deadline:
                raise LabError(f"zebra in {self.host.name} did not open its sockets:\n{self.log()}")
            time.sleep(0.02)

    def running(self, daemon: str) -> bool:
        d = self.daemons.get(daemon)
        return d is not None and d.running()

    def pid(self, daemon: str) -> int | None:
        d = self.daemons.get(daemon)
        return d.pid if d is not None and d.running() else None

    def vtysh(self, daemon: str, *commands: str, timeout_s: float = 5.0) -> str:
        """vtysh against one daemon's vty socket (a path: no `ip netns exec` needed)."""
        argv = ["vtysh", "--vty_socket", str(self.dir), "-d", daemon]
        for command in commands:
            argv += ["-c", command]
        return run_cmd(argv, timeout_s=timeout_s).stdout

    def stop(self) -> None:
        """SIGTERM every daemon, the last started first (a killed straggler is reported); safe to call twice."""
        stubborn = []
        for name, d in reversed(list(self.daemons.items())):
            if not d.terminate(STOP_TIMEOUT_S):
                stubborn.append(name)
        self.remove_crash_dirs()
        if stubborn:
            raise LabError(f"FRR {', '.join(stubborn)} in {self.host.name} ignored SIGTERM; killed")

    def kill(self, *daemons: str) -> list[int]:
        """SIGKILL the named daemons (all without names): no NOTIFICATION, no clean exit. Their pids."""
        killed = []
        for name in daemons or tuple(self.daemons):
            d = self.daemons.get(name)
            if d is not None and d.running():
                killed.append(d.pid)
                d.kill()
        self.remove_crash_dirs()
        return killed

    def remove_crash_dirs(self) -> None:
        for daemon, pid in self._pids:
            if not pid_alive(pid):
                shutil.rmtree(FRR_TMP / f"{daemon}.{pid}", ignore_errors=True)

    def pids(self) -> list[tuple[str, int]]:
        """(daemon, pid) of every daemon started here, alive or not."""
        return list(self._pids)

    def log(self, lines: int = 20) -> str:
        parts = []
        for path in sorted(self.dir.glob("*.log")) + sorted(self.dir.glob("*.out")):
            text = path.read_text(errors="replace").strip()
            if text:
                parts.append(f"==> {path.name} <==\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)
