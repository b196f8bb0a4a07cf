"""The domain's closed sets are types: mypy --strict rejects a misspelt word, and optional data-plane
capabilities are part of the DataPlane protocol instead of attributes probed with hasattr/getattr.

The mypy checks run mypy (the project's dev dependency) on small snippets in a
temporary directory against this tree's sources; they take a few seconds.
"""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from pykeepalived.config import vocabulary as v
from pykeepalived.config.dump import dump_json
from pykeepalived.config.model import KeepalivedConfig, VirtualServer
from pykeepalived.lvs.model import DataPlaneBase
from pykeepalived.lvs.null import TableOnly

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "pykeepalived"

GOOD = '''
from pykeepalived.config.model import HttpCheck, RealServer, VirtualServer, VrrpInstance
from pykeepalived.lvs.model import DataPlane
from pykeepalived.lvs.null import TableOnly

def f(vs: VirtualServer, rs: RealServer, c: HttpCheck, i: VrrpInstance) -> bool:
    return (vs.kind == "fwmark" or vs.lvs_method == "DR" or vs.protocol == "SCTP" or vs.lvs_sched == "wlc"
            or rs.lvs_method == "TUN" or c.kind == "SSL_GET" or i.state == "MASTER" or vs.ip_family == 6)

plane: DataPlane = TableOnly()
'''

BAD = {
    "server kind": "def f(vs: VirtualServer) -> bool:\n    return vs.kind == 'fwmrak'\n",
    "lb kind": "def f(vs: VirtualServer) -> bool:\n    return vs.lvs_method == 'ROUTE'\n",
    "scheduler": "def f(vs: VirtualServer) -> bool:\n    return vs.lvs_sched == 'wrrr'\n",
    "protocol": "def f(vs: VirtualServer) -> bool:\n    return vs.protocol == 'tcp'\n",
    "family": "def f(vs: VirtualServer) -> bool:\n    return vs.ip_family == 46\n",
    "checker kind": "def f(c: HttpCheck) -> bool:\n    return c.kind == 'HTTPS_GET'\n",
    "vrrp state": "def f(i: VrrpInstance) -> bool:\n    return i.state == 'FAULT'\n",
    "assignment": "def f(vs: VirtualServer) -> None:\n    vs.lvs_method = 'nat'\n",
    "data plane without capabilities": (
        "class Plane:\n    name = 'x'\n    async def apply(self, table: object) -> None: ...\n"
        "    async def close(self) -> None: ...\nplane: DataPlane = Plane()  # no repair/counts/rebalance/flags\n"
    ),
}
HEADER = ("from pykeepalived.config.model import HttpCheck, VirtualServer, VrrpInstance\n"
          "from pykeepalived.lvs.model import DataPlane\n")


def _mypy(tmp_path: Path, files: dict[str, str]) -> str:
    pytest.importorskip("mypy")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "MYPYPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "--config-file", os.devnull, *files],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


def test_mypy_rejects_a_misspelt_word_and_a_plane_without_capabilities(tmp_path: Path) -> None:
    files = {"good.py": GOOD}
    files.update({f"bad_{i}.py": HEADER + text for i, text in enumerate(BAD.values())})
    out = _mypy(tmp_path, files)
    assert "good.py" not in out, out
    for i, what in enumerate(BAD):
        assert f"bad_{i}.py" in out, f"mypy accepted a misspelt {what}:\n{out}"
    assert "Non-overlapping equality check" in out


def test_the_vocabulary_stays_plain_words_so_dumps_are_unchanged() -> None:
    """Literal types, not enum members: the dump still shows "fwmark", "DR", 6."""
    vs = VirtualServer("fwmark", fwmark=1, ip_family=6, lvs_method="DR", lvs_sched="twos", protocol="UDP")
    text = dump_json(KeepalivedConfig(virtual_servers=[vs]))
    for word in ('"kind": "fwmark"', '"lvs_method": "DR"', '"ip_family": 6', '"lvs_sched": "twos"',
                 '"protocol": "UDP"'):
        assert word in text
    assert set(v.LB_KINDS.values()) == set(get_args(v.LbKind))
    assert set(v.PROTOCOLS.values()) == set(get_args(v.L4Protocol))
    assert set(v.FAMILY_WORDS.values()) == set(get_args(v.Family))
    assert v.LOAD_SCHEDULERS <= set(v.SCHEDULER_NAMES)


def test_a_plane_without_capabilities_says_so() -> None:
    plane = TableOnly()
    assert isinstance(plane, DataPlaneBase)
    assert (plane.error, plane.can_repair, plane.can_rebalance) == (None, False, False)
    assert asyncio.run(plane.counts()) is None and asyncio.run(plane.repair()) is None
    assert TableOnly(error="no backend").error == "no backend"


def test_no_duck_typing_of_data_planes_or_probes() -> None:
    """hasattr/getattr on a data plane or a probe (or a checker's config) would bypass the protocol."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("hasattr", "getattr") and node.args):
                target = ast.unparse(node.args[0])
                if any(word in target for word in ("dataplane", "probe", "self.config")):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_no_code_reads_global_defs_settings_by_key() -> None:
    """Keywords code acts on are typed GlobalDefs fields; `settings` only keeps the ones nothing reads."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "settings":
                owner = ast.unparse(node.value)
                if owner == "g" or owner.endswith("global_defs"):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def _domain_words() -> set[str]:
    """Every word of the vocabulary's string Literal types."""
    words: set[str] = set()
    for name in dir(v):
        value = getattr(v, name)
        args = get_args(value)
        words |= {a for a in args if isinstance(a, str)}
        for arg in args:  # unions of Literals (TableScheduler)
            words |= {a for a in get_args(arg) if isinstance(a, str)}
    return words


def test_no_membership_test_against_a_tuple_of_domain_words() -> None:
    """`x in ("DR", "TUN")` escapes mypy's strict equality; `x == "DR" or x == "TUN"` or a typed frozenset does not.

    Flagged when any element is a domain word, so that `("HTTP_GET", "SSL_GETT")` is caught too.
    """
    words = _domain_words()
    assert {"MASTER", "NAT", "rr", "fwmark", "TCP_CHECK"} <= words
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            for op, right in zip(node.ops, node.comparators):
                if not (isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set))):
                    continue
                values = [e.value for e in right.elts if isinstance(e, ast.Constant)]
                # one domain word is enough (the others may be the misspelt ones); (4, 6) is the family set
                if any(isinstance(x, str) and x in words for x in values) or set(values) == {4, 6}:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
