"""A CPU-limited cgroup of the lab's own, for putting routers under a CPU quota.

The stress lab (lab/stress.py) puts the routers' daemons and the load beside
them into one cgroup with a CPU quota, as a container or a small VM would.
cgroup v2 is preferred (`cpu.max`) when a v2 hierarchy has the cpu controller;
on a hybrid host where cpu is still bound to a v1 hierarchy (v2 mounted at
/sys/fs/cgroup/unified with no cpu controller), the v1 cpu controller does the
same job with `cpu.cfs_quota_us` / `cpu.cfs_period_us`. `describe()` says which
one ran, so the figures carry it.

With CONFIG_RT_GROUP_SCHED (v1), a new group has no realtime budget: a
SCHED_RR process cannot be moved in nor switch to realtime inside it. The
group gets `rt_runtime_us` so that daemons with a realtime priority behave as
they would in the root group; the CFS quota does not apply to realtime tasks,
which is the point of a realtime priority on a loaded host.

Processes join at birth: `wrap(argv)` prefixes a shell that writes its own pid
to `cgroup.procs` and then execs the command, so every child the program forks
is in the group too. The write happens before `ip netns exec`, which mounts a
fresh /sys where the cgroup tree is not visible.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from pykeepalived.lab.netns import LabError

CGROUP_ROOT = Path("/sys/fs/cgroup")
Version = Literal["v2", "v1"]


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, options) of every cgroup mount, from /proc/self/mounts."""
    out = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                out.append((parts[1], parts[2], parts[3]))
    return out


@dataclass(frozen=True)
class CpuHierarchy:
    """Where CPU-limited groups can be made."""

    version: Version
    root: Path
    note: str  # what was found, for the report


def find_cpu_hierarchy() -> CpuHierarchy:
    """The cgroup hierarchy with the cpu controller: v2 if one has it, else v1's; LabError if none."""
    mounts = _mounts()
    notes = []
    for point, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        try:
            controllers = (Path(point) / "cgroup.controllers").read_text().split()
        except OSError:
            controllers = []
        if "cpu" in controllers:
            return CpuHierarchy("v2", Path(point), f"cgroup v2 at {point} with the cpu controller")
        notes.append(f"cgroup v2 is mounted at {point} without the cpu controller (controllers: "
                     f"{' '.join(controllers) or 'none'})")
    if not notes:
        notes.append("no cgroup v2 mount")
    for point, fstype, options in mounts:
        if fstype == "cgroup" and "cpu" in options.split(","):
            return CpuHierarchy("v1", Path(point), "; ".join(notes) + f"; used the v1 cpu controller at {point}")
    raise LabError("; ".join(notes) + "; and no cgroup v1 hierarchy with the cpu controller")


class CpuCgroup:
    """One group `pykeepalived-stress-XXXXXX` with `quota_us` of CPU time per `period_us`; removed by close()."""

    def __init__(self, quota_us: int, period_us: int = 100_000, *, rt_runtime_us: int = 200_000,
                 hierarchy: CpuHierarchy | None = None) -> None:
        if quota_us <= 0 or period_us <= 0:
            raise LabError(f"CPU limit needs a positive quota and period, not {quota_us}/{period_us}")
        self.hierarchy = hierarchy or find_cpu_hierarchy()
        self.quota_us = quota_us
        self.period_us = period_us
        self.rt_runtime_us: int | None = None
        self.path = self.hierarchy.root / f"pykeepalived-stress-{secrets.token_hex(3)}"
        if self.hierarchy.version == "v2":
            self._enable_cpu_v2()
        self.path.mkdir()
        try:
            if self.hierarchy.version == "v2":
                self._write("cpu.max", f"{quota_us} {period_us}")
            else:
                self._write("cpu.cfs_period_us", str(period_us))
                self._write("cpu.cfs_quota_us", str(quota_us))
                if (self.path / "cpu.rt_runtime_us").exists():
                    self._write("cpu.rt_runtime_us", str(rt_runtime_us))
                    self.rt_runtime_us = rt_runtime_us
        except BaseException:
            self.close()
            raise

    def _enable_cpu_v2(self) -> None:
        control = self.hierarchy.root / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")

    def _write(self, name: str, value: str) -> None:
        try:
            (self.path / name).write_text(value)
        except OSError as exc:
            raise LabError(f"cannot write {value!r} to {self.path / name}: {exc}") from exc

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run so that its process (same pid: exec) and all it forks start in this group."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file), *argv]

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in self.procs_file.read_text().split()]
        except OSError:
            return []

    def stat(self) -> dict[str, int]:
        """cpu.stat: throttled periods and time (v1: nr_throttled, throttled_time ns; v2: *_usec)."""
        out: dict[str, int] = {}
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if value.strip().isdigit():
                    out[key] = int(value)
        except OSError:
            pass
        return out

    def describe(self) -> dict[str, object]:
        return {"cgroup": self.hierarchy.version, "path": str(self.path), "quota_us": self.quota_us,
                "period_us": self.period_us, "cpus": round(self.quota_us / self.period_us, 3),
                "rt_runtime_us": self.rt_runtime_us, "found": self.hierarchy.note}

    def close(self) -> None:
        """Move what is left to the parent group and remove the group; safe to call twice."""
        if not self.path.exists():
            return
        parent = self.path.parent / "cgroup.procs"
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    parent.write_text(str(pid))
                except OSError:
                    pass  # gone meanwhile
            time.sleep(0.02)
        try:
            os.rmdir(self.path)
        except OSError as exc:
            raise LabError(f"cannot remove cgroup {self.path}: {exc}") from exc

    def __enter__(self) -> CpuCgroup:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
