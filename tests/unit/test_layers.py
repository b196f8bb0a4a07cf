"""The layer rule, enforced over the whole import graph.

Every module of `src/pykeepalived` belongs to one layer (`LAYERS`, bottom
first; docs/architecture.md shows the same table). The graph is built with
`ast` from every import statement, including those inside functions and under
`TYPE_CHECKING`, with relative imports resolved. Three rules:

- no import cycles, between modules or between packages;
- no import from a lower layer to a higher one;
- no module of the pure layers (`base`, `config`, `cores`) reaches a module that
  does I/O (`IO_MODULES`, submodules named in `from X import Y` included) or calls
  a built-in that does (`IO_BUILTINS`: open, __import__, ...), directly or through
  other pykeepalived modules.

And nothing in the package imports by name (importlib, __import__): such an
import is an edge this test cannot see.

A module missing from `LAYERS` fails the test: a new module is placed on purpose.
The last tests plant violations in a copy of the tree and check that each is caught.
"""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Bottom first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["pykeepalived", "pykeepalived.errors"]),
    ("config", ["pykeepalived.config", "pykeepalived.config.*"]),
    ("cores", [
        "pykeepalived.vrrp", "pykeepalived.vrrp.packet", "pykeepalived.vrrp.settings", "pykeepalived.vrrp.machine",
        "pykeepalived.vrrp.group", "pykeepalived.vrrp.core", "pykeepalived.vrrp.track",
        "pykeepalived.vrrp.dataplane_fault", "pykeepalived.vrrp.garp_pacing",
        "pykeepalived.vrrp.dump_view", "pykeepalived.vrrp.data_dump", "pykeepalived.vrrp.stats_dump",
        "pykeepalived.vrrp.json_dump",
        "pykeepalived.vrrp.track_process", "pykeepalived.check.ha_suspend",
        "pykeepalived.check", "pykeepalived.check.logic", "pykeepalived.check.pool", "pykeepalived.check.probe",
        "pykeepalived.check.context", "pykeepalived.check.outcomes", "pykeepalived.check.http_response",
        "pykeepalived.check.smtp_session", "pykeepalived.check.dns_wire", "pykeepalived.check.icmp",
        "pykeepalived.check.data_dump",
        "pykeepalived.check.reload_plan",
        "pykeepalived.check.syn_wire",  # a SYN probe's bytes
        "pykeepalived.state", "pykeepalived.state.store", "pykeepalived.state.runtime", "pykeepalived.state.commands",
        "pykeepalived.state.runtime_names",
        "pykeepalived.state.timeline", "pykeepalived.vrrp.state_view", "pykeepalived.check.state_view",
        "pykeepalived.lvs", "pykeepalived.lvs.model", "pykeepalived.lvs.plan", "pykeepalived.lvs.sched",
        "pykeepalived.lvs.ipvs_rules", "pykeepalived.lvs.nft_rules", "pykeepalived.lvs.nft_diff",
        "pykeepalived.lvs.nft_limits",  # nft_rules' checks that -t needs (start-up)
        "pykeepalived.lvs.maglev", "pykeepalived.lvs.nft_handles",  # Maglev replays; the table dump's codec
        "pykeepalived.lvs.nft_modulus",  # a pick rule's new modulus in the kernel's encoding (codec)
        "pykeepalived.lvs.nft_stateless", "pykeepalived.lvs.nft_forward", "pykeepalived.lvs.nft_layout",
        "pykeepalived.lvs.stable_table", "pykeepalived.lvs.route_spans",
        "pykeepalived.lvs.sync_daemon",
        "pykeepalived.ctsync", "pykeepalived.ctsync.spec", "pykeepalived.ctsync.conf",  # conntrackd's cores
        "pykeepalived.ctsync.follower",
        "pykeepalived.alerts", "pykeepalived.alerts.message", "pykeepalived.vrrp.startup_delay",
        "pykeepalived.vrrp.rx_bufs",
        "pykeepalived.bfd", "pykeepalived.bfd.packet", "pykeepalived.bfd.session", "pykeepalived.check.bfd_check",
        "pykeepalived.vrrp.vmac_addr", "pykeepalived.vrrp.ipvlan_settings",  # the VRRP interface helper's
        "pykeepalived.vrrp.link_debounce",
        "pykeepalived.vrrp.reload_plan",  # the VRRP reload helper's: what a reload changes
        "pykeepalived.doctor", "pykeepalived.doctor.facts", "pykeepalived.doctor.config_view",  # doctor's cores
        "pykeepalived.doctor.host_rules", "pykeepalived.doctor.firewall", "pykeepalived.doctor.peer",
        "pykeepalived.doctor.report",
        "pykeepalived.snmp", "pykeepalived.snmp.agentx", "pykeepalived.snmp.view", "pykeepalived.snmp.rows",
        "pykeepalived.snmp.mib", "pykeepalived.snmp.mib_keepalived", "pykeepalived.snmp.mib_vrrpv3",
        "pykeepalived.snmp.settings", "pykeepalived.snmp.session", "pykeepalived.snmp.traps",
        "pykeepalived.snmp.mib_config", "pykeepalived.snmp.mib_vrrp2",  # SNMP's cores
        "pykeepalived.snmp.mib_checker_config",
        "pykeepalived.bgp", "pykeepalived.bgp.frr_conf", "pykeepalived.bgp.vty", "pykeepalived.bgp.announce",
    ]),
    ("adapters", [
        "pykeepalived.net", "pykeepalived.net.*", "pykeepalived.host", "pykeepalived.host.*",
        "pykeepalived.scripts", "pykeepalived.scripts.*",
        "pykeepalived.lvs.ipvs", "pykeepalived.lvs.ipvs_sync", "pykeepalived.lvs.nft", "pykeepalived.lvs.null",
        "pykeepalived.lvs.skip", "pykeepalived.lvs.nft_elements",  # slot-map elements over nfnetlink
        "pykeepalived.lvs.routes", "pykeepalived.lvs.tunnels", "pykeepalived.lvs.conntrack",
        "pykeepalived.lvs.ctdump",
        "pykeepalived.check.connect", "pykeepalived.check.sockio", "pykeepalived.check.tcp",
        "pykeepalived.check.http", "pykeepalived.check.smtp", "pykeepalived.check.dns", "pykeepalived.check.misc",
        "pykeepalived.check.file", "pykeepalived.check.ping", "pykeepalived.check.udp",
        "pykeepalived.check.probes", "pykeepalived.check.genhash",
        "pykeepalived.check.syn_probe",  # the raw sockets of SYN probes
        "pykeepalived.alerts.smtp", "pykeepalived.alerts.hooks",
        "pykeepalived.bfd.events",
        "pykeepalived.snmp.interfaces",  # ifIndex, MAC, primary addresses for VRRPv3-MIB
    ]),
    ("shells", [
        "pykeepalived.vrrp.service", "pykeepalived.vrrp.dump_writer", "pykeepalived.check.service",
        "pykeepalived.check.running", "pykeepalived.check.reload_snapshot",
        "pykeepalived.check.engine",  # TCP_CHECK and HTTP_GET on one epoll
        "pykeepalived.api", "pykeepalived.api.*",  # the HTTP API, metrics, the page (issue 16)
        "pykeepalived.vrrp.service", "pykeepalived.check.service", "pykeepalived.check.running",
        "pykeepalived.vrrp.process_watch", "pykeepalived.vrrp.statics", "pykeepalived.check.ha_watch",
        "pykeepalived.vrrp.interfaces",
        "pykeepalived.vrrp.source_tracking",  # the VRRP interface helper's (track_src_ip)
        "pykeepalived.vrrp.link_feed",
        "pykeepalived.check.workers", "pykeepalived.check.plan", "pykeepalived.check.once",
        "pykeepalived.check.dump_writer",
        "pykeepalived.lvs.choose",
        "pykeepalived.ctsync.setup", "pykeepalived.ctsync.keeper", "pykeepalived.ctsync.client",  # conntrackd's shell
        "pykeepalived.ctsync.guard",
        "pykeepalived.bfd.service",
        "pykeepalived.vrrp.reload_apply",  # the VRRP reload helper's: carries a reload plan out
        "pykeepalived.vrrp.runtime_apply", "pykeepalived.check.runtime_apply",  # the runtime API's effects
        "pykeepalived.doctor.gather", "pykeepalived.doctor.route_probe",  # doctor's shell
        "pykeepalived.snmp.subagent",  # the AgentX subagent in the parent (issue 16)
        "pykeepalived.bgp.speaker", "pykeepalived.check.bgp_link",  # bgpd, its vty, the checker's link (issue 19)
    ]),
    ("daemon", ["pykeepalived.daemon", "pykeepalived.daemon.*"]),
    ("cli/lab", ["pykeepalived.cli", "pykeepalived.__main__", "pykeepalived.status", "pykeepalived.cmdline",
                 "pykeepalived.cmdline.*",
                 "pykeepalived.lab", "pykeepalived.lab.*",
                 "pykeepalived.doctor.command", "pykeepalived.ctl"]),
]
PURE_LAYERS = {"base", "config", "cores"}
# Standard-library and third-party modules (and submodules) that do I/O, keep time or touch the kernel.
# dnspython's wire codec (dns.message, dns.rdatatype) is pure; its resolver and query modules are not.
IO_MODULES = {
    "asyncio", "socket", "ssl", "select", "selectors", "signal", "os", "time", "subprocess", "glob", "shutil",
    "fcntl", "termios", "ctypes", "threading", "multiprocessing", "concurrent", "pwd", "grp", "resource",
    "mmap", "tempfile", "logging", "pathlib", "urllib.request", "http.client", "http.server",
    "io", "datetime", "random", "secrets", "uuid", "importlib",
    "pyroute2", "nftables", "dns.query", "dns.asyncquery", "dns.resolver", "dns.asyncresolver",
}
# Built-in functions that do I/O or import by name: as bad in a pure module as importing `os`.
IO_BUILTINS = {"open", "input", "__import__", "exec", "eval", "compile", "breakpoint"}


def is_io(name: str) -> bool:
    return any(name == io or name.startswith(io + ".") for io in IO_MODULES)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: list[Edge]  # between pykeepalived modules
    external: dict[str, set[str]]  # module -> dotted names of other packages' modules it imports
    builtins: dict[str, set[str]]  # module -> the IO_BUILTINS it calls, each as `name:line`

    def targets(self, module: str) -> set[str]:
        return {e.target for e in self.edges if e.source == module}


def build_graph(src: Path) -> Graph:
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for path in sorted((src / "pykeepalived").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            packages.add(".".join(parts))
        modules[".".join(parts)] = path

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    edges: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    external: dict[str, set[str]] = {m: set() for m in modules}
    builtins: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        here = module.split(".") if module in packages else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_BUILTINS:
                builtins[module].add(f"{node.func.id}:{node.lineno}")
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target == "pykeepalived" or target.startswith("pykeepalived."):
                    # `from pkg import name` imports the submodule pkg.name when there is one
                    names = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                             for a in node.names]
                else:
                    # `from dns import resolver` may import the submodule dns.resolver: keep both names
                    names = [target, *(f"{target}.{a.name}" for a in node.names)]
            for name in names:
                if name == "pykeepalived" or name.startswith("pykeepalived."):
                    target_module = known(name)
                    if target_module != module and (module, target_module) not in seen:
                        seen.add((module, target_module))
                        edges.append(Edge(module, target_module, node.lineno))
                else:
                    external[module].add(name)
    return Graph(modules, edges, external, builtins)


def layer_of(module: str) -> str | None:
    for layer, patterns in LAYERS:
        if any(fnmatchcase(module, p) for p in patterns):
            return layer
    return None


def layer_rank(module: str) -> int:
    names = [name for name, _ in LAYERS]
    layer = layer_of(module)
    return names.index(layer) if layer is not None else -1


def cycles(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_of(module: str) -> str:
    """The top-level package (`pykeepalived.vrrp`) or module (`pykeepalived.cli`) a module belongs to."""
    return ".".join(module.split(".")[:2])


def unplaced(graph: Graph) -> list[str]:
    return [m for m in graph.modules if layer_of(m) is None]


def module_cycles(graph: Graph) -> list[list[str]]:
    edges: dict[str, set[str]] = {}
    for e in graph.edges:
        edges.setdefault(e.source, set()).add(e.target)
    return cycles(graph.modules, edges)


def package_cycles(graph: Graph) -> list[list[str]]:
    edges: dict[str, set[str]] = {}
    for e in graph.edges:
        source, target = package_of(e.source), package_of(e.target)
        if source != target and source != "pykeepalived" and target != "pykeepalived":
            edges.setdefault(source, set()).add(target)
    return cycles(sorted({package_of(m) for m in graph.modules}), edges)


def upward_imports(graph: Graph) -> list[str]:
    return [f"{e} ({layer_of(e.source)} -> {layer_of(e.target)})" for e in graph.edges
            if layer_rank(e.target) > layer_rank(e.source)]


def impure_reach(graph: Graph) -> list[str]:
    """Pure modules that reach an I/O module, with the path that gets there."""
    problems: list[str] = []
    for module in graph.modules:
        if layer_of(module) not in PURE_LAYERS:
            continue
        seen = {module: [module]}
        queue = [module]
        while queue:
            current = queue.pop(0)
            bad = sorted([name for name in graph.external[current] if is_io(name)]
                         + [f"{call}()" for call in graph.builtins[current]])
            if bad:
                problems.append(f"{module} reaches {bad[0]} via {' -> '.join(seen[current])}")
                break
            for target in sorted(graph.targets(current)):
                if target not in seen:
                    seen[target] = seen[current] + [target]
                    queue.append(target)
    return problems


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph(SRC)


def test_every_module_has_a_layer(graph: Graph) -> None:
    assert unplaced(graph) == []


def test_no_module_import_cycles(graph: Graph) -> None:
    assert module_cycles(graph) == []


def test_no_package_import_cycles(graph: Graph) -> None:
    assert package_cycles(graph) == []


def test_no_import_from_a_lower_layer_to_a_higher_one(graph: Graph) -> None:
    assert upward_imports(graph) == []


def test_pure_layers_never_reach_io(graph: Graph) -> None:
    assert impure_reach(graph) == []


def test_no_import_by_name(graph: Graph) -> None:
    """importlib.import_module and __import__ hide an edge from this test: spell the import out."""
    found = [f"{m}: {call}" for m, calls in graph.builtins.items() for call in calls if call.startswith("__import__")]
    found += [f"{m} imports importlib" for m, names in graph.external.items() if is_io_name(names, "importlib")]
    assert found == []


def is_io_name(names: set[str], wanted: str) -> bool:
    return any(name == wanted or name.startswith(wanted + ".") for name in names)


def test_graph_sees_imports_inside_functions_and_relative_ones(graph: Graph) -> None:
    # lazy imports count: the probe dispatcher imports each probe module inside a function
    assert "pykeepalived.check.tcp" in graph.targets("pykeepalived.check.probes")
    # `from ..config import script_rules as sec` resolves to the submodule
    assert "pykeepalived.config.script_rules" in graph.targets("pykeepalived.scripts.runner")


# ---------------------------------------------------------------- planted violations
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(SRC / "pykeepalived", tmp_path / "pykeepalived")
    return tmp_path


def _plant(tree: Path, module: str, code: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_planted_upward_import_in_a_function_is_caught(tree: Path) -> None:
    _plant(tree, "pykeepalived.vrrp.machine", "def _planted() -> None:\n    from ..daemon import run  # noqa")
    found = upward_imports(build_graph(tree))
    assert any("pykeepalived.vrrp.machine" in p and "pykeepalived.daemon.run" in p for p in found), found


def test_planted_indirect_io_import_in_a_core_is_caught(tree: Path) -> None:
    # a core importing a kernel adapter reaches pyroute2 through it, even though it names no I/O module itself
    _plant(tree, "pykeepalived.lvs.sched", "from ..net import addresses  # noqa")
    graph = build_graph(tree)
    assert any(p.startswith("pykeepalived.lvs.sched reaches") for p in impure_reach(graph)), impure_reach(graph)
    # and config -> (a pure module that imports time) is caught too
    (tree / "pykeepalived" / "config" / "clock.py").write_text("import time\n")
    _plant(tree, "pykeepalived.config.values", "from . import clock  # noqa")
    assert any(p.startswith("pykeepalived.config.values reaches time via pykeepalived.config.values -> "
                            "pykeepalived.config.clock") for p in impure_reach(build_graph(tree)))


@pytest.mark.parametrize("code", [
    "from dns import resolver  # noqa",
    "from urllib import request  # noqa",
    "import importlib  # noqa",
    "def _planted() -> object:\n    return open('/etc/passwd')",
    "def _planted() -> object:\n    return __import__('socket')",
])
def test_planted_io_in_a_core_is_caught_however_spelt(tree: Path, code: str) -> None:
    _plant(tree, "pykeepalived.check.dns_wire", code)
    found = impure_reach(build_graph(tree))
    assert any(p.startswith("pykeepalived.check.dns_wire reaches") for p in found), found


def test_planted_import_by_name_is_caught(tree: Path) -> None:
    _plant(tree, "pykeepalived.daemon.run", "def _planted() -> object:\n"
                                            "    import importlib\n    return importlib.import_module('x')")
    with pytest.raises(AssertionError):
        test_no_import_by_name(build_graph(tree))


def test_planted_cycle_is_caught(tree: Path) -> None:
    _plant(tree, "pykeepalived.config.lexer", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                              "    from .parser import ParseContext  # noqa")
    assert any("pykeepalived.config.lexer" in c for c in module_cycles(build_graph(tree)))


def test_planted_package_cycle_is_caught(tree: Path) -> None:
    # host (adapters) importing scripts (adapters) is no layer violation, but scripts already imports host
    _plant(tree, "pykeepalived.host.proc", "from ..scripts import runner  # noqa")
    assert ["pykeepalived.host", "pykeepalived.scripts"] in package_cycles(build_graph(tree))


def test_new_module_without_a_layer_is_caught(tree: Path) -> None:
    (tree / "pykeepalived" / "newthing.py").write_text("")
    assert unplaced(build_graph(tree)) == ["pykeepalived.newthing"]


if __name__ == "__main__":  # a report: python tests/unit/test_layers.py [SRC_DIR]
    g = build_graph(Path(sys.argv[1]) if len(sys.argv) > 1 else SRC)
    for title, items in (("unplaced", unplaced(g)), ("module cycles", module_cycles(g)),
                         ("package cycles", package_cycles(g)), ("upward", upward_imports(g)),
                         ("impure", impure_reach(g))):
        print(f"{title}: {len(items)}")
        for item in items:
            print("   ", item)
    sys.exit(0)
