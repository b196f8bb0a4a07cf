"""doctor's report: one line per finding ("SEVERITY area: what -- fix: what to do"), a summary line, or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from .facts import Finding

EXIT_CLEAN = 0
EXIT_FINDINGS = 1


def counted(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.counts]


def summary(findings: Sequence[Finding], subject: str) -> str:
    real = counted(findings)
    if not real:
        return f"doctor: {subject}: clean"
    errors = sum(1 for f in real if f.severity == "ERROR")
    return (f"doctor: {subject}: {len(real)} finding{'s' if len(real) != 1 else ''} "
            f"({errors} error{'s' if errors != 1 else ''}, {len(real) - errors} warning"
            f"{'s' if len(real) - errors != 1 else ''})")


def text_report(findings: Sequence[Finding], subject: str, notes: bool = True) -> str:
    lines = [f.line() for f in findings if notes or f.counts]
    return "\n".join([*lines, summary(findings, subject)]) + "\n"


def json_report(findings: Sequence[Finding], subject: str) -> str:
    real = counted(findings)
    return json.dumps({
        "subject": subject,
        "clean": not real,
        "errors": sum(1 for f in real if f.severity == "ERROR"),
        "warnings": sum(1 for f in real if f.severity == "WARNING"),
        "findings": [{**asdict(f), "where": list(f.where), "line": f.line()} for f in findings],
        "summary": summary(findings, subject),
    }, indent=1) + "\n"


def exit_status(findings: Sequence[Finding]) -> int:
    return EXIT_FINDINGS if counted(findings) else EXIT_CLEAN
