"""The sans-IO cores do no I/O: they may not import the modules that do."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = {"asyncio", "socket", "time", "os", "pyroute2", "subprocess", "glob", "select", "signal"}
SRC = Path(__file__).parents[2] / "src" / "pykeepalived"
CORES = [
    *sorted((SRC / "config").glob("*.py")),
    SRC / "vrrp" / "core.py",
    SRC / "check" / "http_response.py",
    SRC / "lvs" / "ipvs_rules.py",
    SRC / "check" / "smtp_session.py",
    SRC / "check" / "dns_wire.py",
    SRC / "check" / "outcomes.py",
    SRC / "check" / "icmp.py",
    SRC / "vrrp" / "packet.py",
    SRC / "vrrp" / "machine.py",
    SRC / "vrrp" / "group.py",
    SRC / "vrrp" / "track.py",
    SRC / "vrrp" / "settings.py",
    SRC / "check" / "logic.py",
    SRC / "check" / "pool.py",
    SRC / "lvs" / "sched.py",
    SRC / "lvs" / "nft_rules.py",
    SRC / "lvs" / "nft_diff.py",
    SRC / "lvs" / "model.py",
]


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            # relative imports must stay inside the cores
            names += [f"relative:{node.module}"]
    return names


@pytest.mark.parametrize("path", CORES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_core_imports_no_io_modules(path: Path) -> None:
    offenders = [n for n in _imports(path) if n in FORBIDDEN]
    assert offenders == []


@pytest.mark.parametrize("path", CORES[-11:-6], ids=lambda p: p.name)
def test_vrrp_core_imports_only_cores(path: Path) -> None:
    allowed = {"relative:packet", "relative:machine", "relative:settings", "relative:group", "relative:track",
               "relative:config.model", "relative:config.errors", "relative:..config.model",
               "relative:core", "relative:config.vrrp_defaults"}
    relative = [n for n in _imports(path) if n.startswith("relative:")]
    assert [n for n in relative if n not in allowed] == []
