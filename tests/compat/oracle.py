"""Run real keepalived 2.2.7 and pykeepalived `-t` on the same file, in the same namespace.

keepalived prints only its configuration errors in `-t` mode; it exits 0 when it
accepts (143 inside some namespaces, where it ends `-t` with SIGTERM) and
non-zero when it rejects. A line it names appears as "(FILE: Line N)" (FILE may be an
included file). When it accepts, the lines it names are complaints it only logs,
which we give as warnings.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

KEEPALIVED = "/usr/sbin/keepalived"
BATCH_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "verdict_batch.py"
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
    return _our_verdict(proc.stdout + proc.stderr, proc.returncode)


def our_verdicts(netns: str, paths: list[str], config_id: str = "pktest") -> dict[str, Verdict]:
    """`-t` on every file in one process (tests/scripts/verdict_batch.py): the same verdicts, one Python start."""
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, str(BATCH_SCRIPT), config_id, *paths],
        capture_output=True, text=True, errors="replace", timeout=60 + len(paths),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"verdict batch failed ({proc.returncode}): {proc.stderr[-2000:]}")
    verdicts = {}
    for line in proc.stdout.splitlines():
        item = json.loads(line)
        verdicts[item["path"]] = _our_verdict(item["output"], item["status"])
    return verdicts


def _our_verdict(out: str, returncode: int) -> Verdict:
    lines: set[int] = set()
    warnings: set[int] = set()
    for line in out.splitlines():
        m = _OUR_LINE.match(line)
        if m:
            (warnings if m.group("msg").startswith("warning:") else lines).add(int(m.group("line")))
    return Verdict(returncode == 0, lines, out, returncode, warnings)
