"""The config core does no I/O: it may not import the modules that do."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"asyncio", "socket", "time", "os", "pyroute2", "subprocess", "glob"}
CORE = Path(__file__).parents[2] / "src" / "pykeepalived" / "config"


def test_config_core_imports_no_io_modules() -> None:
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            offenders += [f"{path.name}: {n}" for n in names if n in FORBIDDEN]
    assert offenders == []
