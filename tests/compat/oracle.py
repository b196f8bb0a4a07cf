"""Run real keepalived 2.2.7 and pykeepalived `-t` on the same file, in the same namespace.

keepalived prints only its configuration errors in `-t` mode; it exits 0 when it
accepts (143 inside some namespaces, where it ends `-t` with SIGTERM) and
non-zero when it rejects. A line it names appears as "(FILE: Line N)" (FILE may be an
included file). When it accepts, the lines it names are complaints it only logs,
which we give as warnings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field

KEEPALIVED = "/usr/sbin/keepalived"
_KA_LINE = re.compile(r"\((?:[^():]*: )?Line (\d+)\)")
_OUR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<msg>.*)$")


@dataclass
class Verdict:
    accepted: bool
    error_lines: set[int]
    output: str
    returncode: int
    warning_lines: set[int] = field(default_factory=set)


def keepalived_verdict(netns: str, path: str, config_id: str = "pktest") -> Verdict:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, KEEPALIVED, "-t", "-l", "-i", config_id, "-f", path],
        capture_output=True, text=True, errors="replace", timeout=60,
    )
    out = proc.stdout + proc.stderr
    lines = {int(m.group(1)) for m in _KA_LINE.finditer(out)}
    if proc.returncode == 0:
        accepted = True
    elif proc.returncode in (143, -15):  # ended by SIGTERM: an exit status or the signal itself
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
    lines: set[int] = set()
    warnings: set[int] = set()
    for line in out.splitlines():
        m = _OUR_LINE.match(line)
        if m:
            (warnings if m.group("msg").startswith("warning:") else lines).add(int(m.group("line")))
    return Verdict(proc.returncode == 0, lines, out, proc.returncode, warnings)
