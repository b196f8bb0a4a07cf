"""Run real keepalived 2.2.7 and pykeepalived `-t` on the same file, in the same namespace.

keepalived prints only its configuration errors in `-t` mode; it exits 0 when it
accepts (143 inside some namespaces, where it ends `-t` with SIGTERM) and
non-zero when it rejects. A line it names appears as "(FILE: Line N)".
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

KEEPALIVED = "/usr/sbin/keepalived"
_KA_LINE = re.compile(r"\((?:[^():]*: )?Line (\d+)\)")
_OUR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<msg>.*)$")


@dataclass
class Verdict:
    accepted: bool
    error_lines: set[int]
    output: str
    returncode: int


def keepalived_verdict(netns: str, path: str, config_id: str = "pktest") -> Verdict:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, KEEPALIVED, "-t", "-l", "-i", config_id, "-f", path],
        capture_output=True, text=True, errors="replace", timeout=60,
    )
    out = proc.stdout + proc.stderr
    lines = {int(m.group(1)) for m in _KA_LINE.finditer(out)}
    if proc.returncode == 0:
        accepted = True
    elif proc.returncode in (143, -15):  # killed by its own SIGTERM: the shell says 143, Python -15
        accepted = not any(line.strip() and line.strip() != "Terminated" for line in out.splitlines())
    else:
        accepted = False
    return Verdict(accepted, lines, out, proc.returncode)


def our_verdict(netns: str, path: str, config_id: str = "pktest") -> Verdict:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "pykeepalived", "-t", "-i", config_id, "-f", path],
        capture_output=True, text=True, errors="replace", timeout=60,
    )
    out = proc.stdout + proc.stderr
    lines = set()
    for line in out.splitlines():
        m = _OUR_LINE.match(line)
        if m and not m.group("msg").startswith("warning:") and m.group("file") == path:
            lines.add(int(m.group("line")))
    return Verdict(proc.returncode == 0, lines, out, proc.returncode)
