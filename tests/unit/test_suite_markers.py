"""Every module of the netns and qemu suites carries the markers that select and guard it.

`-m "not netns"` must leave out every test that builds namespaces or touches
the kernel, and a run without root must skip them with a reason instead of
failing half-way; a module that forgets its `pytestmark` runs with the unit
tests (tests/netns/test_check_tls_timeout.py did). Read with `ast`, so no test
module is imported here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

# The names each suite's module-level `pytestmark` must hold, written as in the source.
REQUIRED = {
    "netns": {"pytest.mark.netns", "needs_root"},
    "vm": {"pytest.mark.vm", "pytest.mark.slow"},
}


def module_marks(path: Path) -> set[str] | None:
    """The dotted names listed by the module's top-level `pytestmark = [...]`; None when it has none."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            continue
        elements = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
        return {ast.unparse(e) for e in elements if isinstance(e, (ast.Name, ast.Attribute))}
    return None


def suite_modules() -> list[tuple[str, Path]]:
    return [(suite, path) for suite in sorted(REQUIRED) for path in sorted((TESTS / suite).glob("test_*.py"))]


@pytest.mark.parametrize(("suite", "path"), suite_modules(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_the_module_carries_its_suites_markers(suite: str, path: Path) -> None:
    marks = module_marks(path)
    assert marks is not None, f"{path.relative_to(TESTS.parent)}: no module-level pytestmark"
    missing = REQUIRED[suite] - marks
    assert not missing, f"{path.relative_to(TESTS.parent)}: pytestmark lacks {sorted(missing)}"


def test_the_suites_are_not_empty() -> None:
    """A moved directory would make the test above vacuous."""
    assert {suite for suite, _ in suite_modules()} == set(REQUIRED)


def test_the_reader_sees_a_missing_marker(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text("import pytest\nfrom .vrrp_helpers import needs_root\n"
                    "pytestmark = [pytest.mark.netns, needs_root, pytest.mark.skipif(True, reason='x')]\n")
    bare = tmp_path / "bare.py"
    bare.write_text("import pytest\n\ndef test_x() -> None:\n    pass\n")
    single = tmp_path / "single.py"
    single.write_text("import pytest\npytestmark = pytest.mark.netns\n")
    assert module_marks(good) == {"pytest.mark.netns", "needs_root"}
    assert module_marks(bare) is None
    assert module_marks(single) == {"pytest.mark.netns"}
