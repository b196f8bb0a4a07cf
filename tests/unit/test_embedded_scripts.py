"""Scripts that tests keep as strings are checked too: shell ones by `sh -n`, Python ones by ruff.

Programs of any size live under tests/scripts/ where ruff sees them; what
stays inline is short: a notify or MISC_CHECK script a test writes, an
`sh -c` command, a guest's command, the snippets of tests/netns/test_net_adapters.py.
Those are found with `ast` (f-string fields become a placeholder word) and
checked here, so that a typo in them fails in the unit suite rather than as a
puzzling netns failure.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("tests", "bench")
SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}
PLACEHOLDER = "PLACEHOLDER"


@dataclass(frozen=True)
class Embedded:
    where: str  # FILE:LINE
    language: str  # "sh", "bash" or "python"
    text: str


class Finder(ast.NodeVisitor):
    """Collects the embedded scripts of one module."""

    def __init__(self, path: Path, tree: ast.Module) -> None:
        self.path = path
        self.found: list[Embedded] = []
        self.scopes: list[dict[str, ast.expr]] = [self._assignments(tree.body)]
        self.python_prelude = (self._render(self.scopes[0].get("PRELUDE")) or "",
                               self._render(self.scopes[0].get("EPILOGUE")) or "")

    @staticmethod
    def _assignments(body: list[ast.stmt]) -> dict[str, ast.expr]:
        names: dict[str, ast.expr] = {}
        for node in body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                names[node.targets[0].id] = node.value
        return names

    def _render(self, node: ast.expr | None, seen: frozenset[int] = frozenset()) -> str | None:
        """The string `node` evaluates to, f-string fields as a placeholder; None when it is not a string."""
        if node is None or id(node) in seen:
            return None
        seen = seen | {id(node)}
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.JoinedStr):
            parts = [self._render(v, seen) if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values]
            return "".join(p or "" for p in parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._render(node.left, seen), self._render(node.right, seen)
            return None if left is None or right is None else left + right
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("textwrap.dedent", "dedent") and node.args:
            inner = self._render(node.args[0], seen)
            return None if inner is None else textwrap.dedent(inner)
        if isinstance(node, ast.Name):
            for scope in reversed(self.scopes):
                if node.id in scope:
                    return self._render(scope[node.id], seen)
        return None

    def _add(self, node: ast.AST, language: str, text: str | None) -> None:
        if text is not None and text.strip():
            self.found.append(Embedded(f"{self.path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}", language, text))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.scopes.append(self._assignments(node.body))
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Constant(self, node: ast.Constant) -> None:
        self._shebang(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._shebang(node)  # the fields' own expressions are not scripts

    def _shebang(self, node: ast.Constant | ast.JoinedStr) -> None:
        text = self._render(node)
        if text is None or not text.startswith("#!"):
            return
        first = text.splitlines()[0]
        if first.endswith(("/sh", "busybox sh")):
            self._add(node, "sh", text)
        elif first.endswith(("/bash", "env bash")):
            self._add(node, "bash", text)

    def visit_List(self, node: ast.List) -> None:
        self._argv(node, node.elts)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self._argv(node, node.args)
        name = ast.unparse(node.func).rsplit(".", 1)[-1]
        if name == "run_in_guest" and node.args:  # a single command is a shell script in the guest
            self._add(node, "sh", self._render(node.args[0]))
        if name in ("run_in", "start_in") and len(node.args) > 2:  # tests/netns/test_net_adapters.py
            parts = [self._render(a) for a in node.args[2:]]
            if all(p is not None for p in parts):
                prelude, epilogue = self.python_prelude
                body = "\n".join(textwrap.dedent(p or "") for p in parts)
                self._add(node, "python", prelude + body + epilogue)
        for keyword in node.keywords:  # box.script(..., body="...") in tests/netns/test_script_security.py
            if keyword.arg == "body" and name == "script":
                self._add(node, "sh", self._render(keyword.value))
        if name == "script" and len(node.args) == 3:  # script(lab, name, body) in test_check_misc_ping_udp.py
            text = self._render(node.args[2])
            self._add(node, "sh", None if text is None else "#!/bin/sh\n" + textwrap.dedent(text))
        self.generic_visit(node)

    def _argv(self, node: ast.AST, items: list[ast.expr]) -> None:
        """`sh -c SCRIPT` and `python -c PROGRAM` inside an argv list or a call's arguments."""
        words = [self._render(i) for i in items]
        for i in range(1, len(items) - 1):
            if words[i] != "-c":
                continue
            program = ast.unparse(items[i - 1])
            if words[i - 1] in SHELLS:
                self._add(node, "bash" if "bash" in (words[i - 1] or "") else "sh", words[i + 1])
            elif program in ("sys.executable", "PYTHON") or words[i - 1] in ("python3", "python"):
                self._add(node, "python", words[i + 1])


def embedded(path: Path) -> list[Embedded]:
    tree = ast.parse(path.read_text(), str(path))
    finder = Finder(path, tree)
    finder.visit(tree)
    return finder.found


def every_embedded() -> Iterator[Embedded]:
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            yield from embedded(path)


ALL = list(every_embedded())


def shell_syntax_errors(script: Embedded) -> str:
    shell = shutil.which("bash" if script.language == "bash" else "sh") or "/bin/sh"
    proc = subprocess.run([shell, "-n"], input=script.text, capture_output=True, text=True, timeout=30, check=False)
    return "" if proc.returncode == 0 else proc.stderr.strip() or f"{shell} -n exited {proc.returncode}"


def python_problems(scripts: list[Embedded], tmp_path: Path) -> list[str]:
    """compile() and ruff (the project's rules, less unused imports, as a shared prelude imports for all,
    and E402 for the placeholder line put first)."""
    problems: list[str] = []
    files: dict[str, Embedded] = {}
    for n, script in enumerate(scripts):
        try:
            compile(script.text, script.where, "exec")
        except SyntaxError as exc:
            problems.append(f"{script.where}: {exc}")
            continue
        path = tmp_path / f"embedded_{n}.py"
        path.write_text(f"{PLACEHOLDER} = None  # stands for the f-string fields\n{script.text}")
        files[path.name] = script
    if files:
        proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                               str(REPO / "pyproject.toml"), "--extend-ignore", "F401,E402",
                               "--output-format", "concise", *sorted(files)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        for line in proc.stdout.splitlines():
            name = line.split(":", 1)[0]
            if name in files:
                problems.append(f"{files[name].where} (embedded): {line.split(':', 1)[1]}")
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and not proc.stdout.strip()):
            problems.append(f"ruff failed: {proc.stderr.strip()}")  # not installed: a failure, never a pass
    return problems


def test_the_finder_sees_the_inline_scripts() -> None:
    """Vacuity guard: the kinds this file is about are found where they are known to be."""
    where = {(s.where.split(":")[0], s.language) for s in ALL}
    assert ("tests/netns/test_check_daemon_kinds.py", "sh") in where  # a MISC_CHECK script
    assert ("tests/netns/test_lab.py", "sh") in where  # an `sh -c` command
    assert ("tests/vm/test_guest.py", "sh") in where  # a guest's command
    assert ("tests/netns/test_net_adapters.py", "python") in where  # the netlink snippets
    assert ("tests/vm/initramfs.py", "sh") in where  # the guest's init


@pytest.mark.parametrize("script", [s for s in ALL if s.language != "python"], ids=lambda s: s.where)
def test_embedded_shell_scripts_parse(script: Embedded) -> None:
    assert shell_syntax_errors(script) == "", f"{script.where}:\n{script.text}"


def test_embedded_python_is_lint_clean(tmp_path: Path) -> None:
    assert python_problems([s for s in ALL if s.language == "python"], tmp_path) == []


def test_a_broken_script_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "test_planted.py"
    module.write_text(textwrap.dedent('''
        import subprocess, sys
        def test_x(tmp_path, out):
            (tmp_path / "s").write_text(f"#!/bin/sh\\nif [ -e {out} ]; then echo yes\\n")
            subprocess.run([sys.executable, "-c", "import os\\nprint(undefined_name)"])
    '''))
    found = Finder(REPO / "tests" / "planted.py", ast.parse(module.read_text()))
    found.visit(ast.parse(module.read_text()))
    shell = [s for s in found.found if s.language == "sh"]
    python = [s for s in found.found if s.language == "python"]
    assert len(shell) == 1 and shell_syntax_errors(shell[0]) != ""
    assert len(python) == 1 and any("F821" in p for p in python_problems(python, tmp_path))
