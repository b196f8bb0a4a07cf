"""The checks CI runs cover what they claim: the whole package typed, every line length, before the tests.

`./bootstrap.sh test` (what .ci/run calls) lints first; these tests keep its
configuration from shrinking back (mypy's `files` once left out cli.py,
status.py, __main__.py and host/, and ruff's defaults leave out E501).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "pykeepalived"


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_mypy_covers_every_module_of_the_package() -> None:
    files = [REPO / f for f in pyproject()["tool"]["mypy"]["files"]]
    modules = sorted(PACKAGE.rglob("*.py"))
    uncovered = [m.relative_to(REPO) for m in modules if not any(m == f or f in m.parents for f in files)]
    assert uncovered == []
    assert pyproject()["tool"]["mypy"]["strict"] is True


def test_ruff_checks_line_length_at_120() -> None:
    ruff = pyproject()["tool"]["ruff"]
    assert ruff["line-length"] == 120
    lint = ruff["lint"]
    assert "E501" in lint.get("select", []) + lint.get("extend-select", [])


def test_bootstrap_lints_before_the_tests_with_the_pinned_tools() -> None:
    script = (REPO / "bootstrap.sh").read_text()
    test_branch = script[script.index("\n    test)"):]
    test_branch = test_branch[:test_branch.index(";;")]
    assert test_branch.index("lint") < test_branch.index("run_tests")
    runner = script[script.index("run_tests() {"):]
    assert "python -m pytest" in runner[:runner.index("\n}\n")]
    lint = script[script.index("lint() {"):]
    lint = lint[:lint.index("\n}\n")]
    assert "mypy --strict src/pykeepalived" in lint
    assert "ruff check src tests bench examples" in lint
    assert re.search(r'pip install .*-e "\.\[[^]]*\bdev\b[^]]*\]"', script), "bootstrap must install the dev pins"
    dev = pyproject()["project"]["optional-dependencies"]["dev"]
    assert all("==" in pin for pin in dev)
    assert "./bootstrap.sh test" in (REPO / ".ci" / "run").read_text()


def test_bootstrap_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(REPO / "bootstrap.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_the_package_ships_its_type_hints() -> None:
    assert (PACKAGE / "py.typed").is_file()
    package_data = pyproject()["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["pykeepalived"]
