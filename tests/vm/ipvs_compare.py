"""keepalived 2.2.7 and pykeepalived, same config, same real servers up: the same IPVS table? (guest side)

For every sample config with `virtual_server` blocks (keepalived's own
samples and the Red Hat guide's in examples/), both daemons run their checker
only (`-C`), each in a fresh network namespace of its own (IPVS tables are per
namespace), and go through the same steps: all real servers up, some down,
all back, ... After each step the harness waits until both daemons have
seen the new state and their tables have settled, and records each table as
`ipvsadm -Sn` prints it, lines sorted.

Which real servers are up is made deterministic by rewriting each config
(`transform`): every real server's health checkers are replaced by one
MISC_CHECK running `check.sh` with the server's address and port, which fails
while a flag file `down/ADDR_PORT` exists; `delay_loop 1` on every
virtual_server; VRRP, e-mail and notify/quorum scripts (which point at files
that do not exist here) are dropped; everything that shapes the table stays.
The script also appends its verdict to a per-daemon, per-checker file, so the
harness knows when each daemon has checked every server since a step; it also
waits for pykeepalived's status file to show the same decisions as applied
(its IPVS edits run in a worker thread and retry, so its table can lag).
Configs run in parallel, as many as keep BUDGET_RS real servers checked at once.

keepalived's checker refuses to run without IPVS, so this runs inside the qemu
guest (tests/vm/test_ipvs_compare.py); by hand, in the guest or on a host with
IPVS, as root:
    python -m tests.vm.ipvs_compare --workdir DIR [--config NAME ...]
Results: DIR/results.json; per config DIR/NAME/ holds both configs, logs and result.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLES_DIRS = [Path("/usr/share/doc/keepalived/samples"), REPO.parent / "shared" / "compat" / "keepalived-samples"]
# the Red Hat guide's configs: the NAT active router (LB2 has the same virtual_server) and the DR one
EXAMPLE_CONFIGS = ("rhel-nat-lb1.conf", "rhel-dr-lb1.conf")
# name -> why it cannot be compared; none so far (every sample runs under both daemons once transformed)
EXCLUDED: dict[str, str] = {}
# What transform() changes beyond the checkers, and why; each leaves keepalived's table as it was.
NEUTRALISED = {
    "protocol in a fwmark virtual_server (keepalived.conf.fwmark)":
        "keepalived warns and ignores it (the service has no protocol); pykeepalived counts it as a config error "
        "and refuses to start, so the line is dropped",
    "vrrp_* blocks, static_*": "the checker-only run (-C) does not use them; they name interfaces the guest lacks",
    "notification_email*, smtp_*": "e-mail only, needs an SMTP server",
    "quorum_up/quorum_down, notify_up/notify_down": "notifications only; the samples name scripts that do not exist",
}

DAEMONS = ("keepalived", "pykeepalived")
SHORT = {"keepalived": "ka", "pykeepalived": "py"}
# guest-only tmpfs: keepalived's script security wants a root-owned path nobody else can write
RUN_ROOT = Path("/run/ipvscmp")
CHECK_SCRIPT = """#!/bin/sh
# check.sh STATE_DIR ADDRESS PORT TAG: down while STATE_DIR/down/ADDRESS_PORT exists; logs each verdict
if [ -e "$1/down/$2_$3" ]; then r=1; else r=0; fi
echo "$r" >> "$1/seen/$4"
exit "$r"
"""
MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc")

STABLE_S = 3.0  # tables count as settled when unchanged this long (after every server was checked twice)
DIFFERENT_STABLE_S = 12.0  # ... and this long when they differ, in case one daemon is only slow
POLL_S = 1.0
START_TIMEOUT_S = 240.0  # Python starts 20-30x slower in the emulated guest, and the configs run in parallel
STEP_TIMEOUT_S = 90.0
# The scripts are what costs: keepalived forks one per check, so 10 real servers checked every second by both
# daemons keep ~1.4 of the guest's 2 emulated CPUs busy. Configs run in parallel up to this many real servers.
BUDGET_RS = 10
MISC_TIMEOUT_S = 30  # the script runs in ms, but a loaded emulated guest can stall a fork for seconds

# ------------------------------------------------------------------------------------------------ configs


def samples_dir() -> Path | None:
    for d in SAMPLES_DIRS:
        if d.is_dir() and any(d.glob("keepalived.conf.*")):
            return d
    return None


VIRTUAL_SERVER_LINE = re.compile(r"^\s*virtual_server\s", re.M)


def config_sources() -> dict[str, Path]:
    """Every config to compare, by file name: the samples with a virtual_server, then the guide's."""
    out: dict[str, Path] = {}
    d = samples_dir()
    if d is not None:
        for path in sorted(d.glob("keepalived.conf.*")):
            if VIRTUAL_SERVER_LINE.search(path.read_text(errors="replace")):
                out[path.name] = path
    for name in EXAMPLE_CONFIGS:
        path = REPO / "examples" / name
        if path.is_file():
            out[name] = path
    return out


@dataclass
class Node:
    """One config statement: its words (quoted strings keep their quotes) and, for a block, its children."""

    words: list[str]
    children: list[Node] | None = None

    @property
    def keyword(self) -> str:
        return self.words[0] if self.words else ""


TOKEN = re.compile(r'"[^"]*"|\{|\}|[^\s{}"]+')


def _strip_comment(line: str) -> str:
    """keepalived's comments: `!` or `#` at the start of a word, outside quotes, to the end of the line."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch in "!#" and not quoted and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def parse(text: str) -> list[Node]:
    root: list[Node] = []
    stack: list[list[Node]] = [root]
    for raw in text.splitlines():
        words: list[str] = []
        for tok in TOKEN.findall(_strip_comment(raw)):
            if tok == "{":
                if words:
                    node = Node(words, [])
                    stack[-1].append(node)
                    words = []
                elif stack[-1] and stack[-1][-1].children is None:
                    node = stack[-1][-1]  # `{` on the line after its keyword
                    node.children = []
                else:
                    raise ValueError(f"'{{' without a keyword: {raw!r}")
                stack.append(node.children)  # type: ignore[arg-type]
            elif tok == "}":
                if words:
                    stack[-1].append(Node(words))
                    words = []
                if len(stack) == 1:
                    raise ValueError(f"unbalanced '}}': {raw!r}")
                stack.pop()
            else:
                words.append(tok)
        if words:
            stack[-1].append(Node(words))
    if len(stack) != 1:
        raise ValueError("unbalanced '{'")
    return root


def render(nodes: Iterable[Node], indent: int = 0) -> str:
    out = []
    pad = "    " * indent
    for node in nodes:
        if node.children is None:
            out.append(f"{pad}{' '.join(node.words)}\n")
        else:
            out.append(f"{pad}{' '.join(node.words)} {{\n{render(node.children, indent + 1)}{pad}}}\n")
    return "".join(out)


CHECKERS = {"HTTP_GET", "SSL_GET", "TCP_CHECK", "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "BFD_CHECK", "UDP_CHECK",
            "PING_CHECK", "FILE_CHECK"}
# top-level blocks that only VRRP (or the outside world) uses: the checker-only run has no use for them
DROP_TOP = {"vrrp_instance", "vrrp_sync_group", "vrrp_script", "vrrp_track_process", "static_ipaddress",
            "static_routes", "static_rules", "garp_group", "linkbeat_interfaces"}
# e-mail needs an SMTP server; script_user/enable_script_security are set below
DROP_GLOBAL = {"notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout",
               "smtp_helo_name", "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "script_user",
               "enable_script_security"}
# scripts the samples name but this machine does not have (/usr/local/sbin/quorum-up.sh...): notifications only
DROP_VS = {"quorum_up", "quorum_down", "notify_up", "notify_down", "delay_loop"}
DROP_RS = {"notify_up", "notify_down"}


@dataclass
class RealServerInfo:
    address: str
    port: int
    weight: int
    tag: str  # "<vs index>-<rs index>": names the per-daemon verdict log of its checker

    @property
    def flag(self) -> str:
        return f"{self.address}_{self.port}"


@dataclass
class ServiceInfo:
    title: str
    quorum: int | None
    hysteresis: int
    sorry: bool
    real_servers: list[RealServerInfo] = field(default_factory=list)


def _int_after(node: Node, default: int) -> int:
    try:
        return int(node.words[1])
    except (IndexError, ValueError):
        return default


def transform(text: str, state_dir: Path, daemon: str) -> tuple[str, list[ServiceInfo]]:
    """The config with every real server's checkers replaced by one MISC_CHECK; and what the steps need.

    Everything that shapes the IPVS table is kept: lb_algo/lb_kind, persistence, protocol, groups, fwmarks,
    weights, inhibit_on_failure, alpha, quorum, hysteresis, sorry_server...
    """
    nodes = parse(text)
    services: list[ServiceInfo] = []
    out: list[Node] = []
    global_defs = Node(["global_defs"], [])
    out.append(global_defs)
    for node in nodes:
        if node.keyword in DROP_TOP:
            continue
        if node.keyword == "global_defs":
            global_defs.children = [c for c in node.children or [] if c.keyword not in DROP_GLOBAL]
            continue
        if node.keyword == "virtual_server" and node.children is not None:
            node = _transform_vs(node, len(services), state_dir, daemon, services)
        out.append(node)
    assert global_defs.children is not None
    global_defs.children += [Node(["script_user", "root"]), Node(["enable_script_security"])]
    header = f"# {daemon}: checkers replaced by {state_dir}/check.sh (tests/vm/ipvs_compare.py)\n"
    return header + render(out), services


def _transform_vs(node: Node, index: int, state_dir: Path, daemon: str, services: list[ServiceInfo]) -> Node:
    assert node.children is not None
    info = ServiceInfo(" ".join(node.words[1:]), None, 0, False)
    vs_weight = 1
    for child in node.children:
        if child.keyword == "quorum":
            info.quorum = _int_after(child, 1)
        elif child.keyword == "hysteresis":
            info.hysteresis = _int_after(child, 0)
        elif child.keyword == "sorry_server":
            info.sorry = True
        elif child.keyword == "weight":
            vs_weight = _int_after(child, 1)
    children = [Node(["delay_loop", "1"])]
    for child in node.children:
        if child.keyword in DROP_VS or (child.keyword == "protocol" and node.words[1:2] == ["fwmark"]):
            continue
        if child.keyword == "real_server" and child.children is not None:
            child = _transform_rs(child, index, len(info.real_servers), vs_weight, state_dir, daemon, info)
        children.append(child)
    services.append(info)
    return Node(node.words, children)


def _transform_rs(node: Node, vs_index: int, rs_index: int, vs_weight: int, state_dir: Path, daemon: str,
                  info: ServiceInfo) -> Node:
    assert node.children is not None
    address = node.words[1]
    port = int(node.words[2]) if len(node.words) > 2 and node.words[2].isdigit() else 0
    weight = next((_int_after(c, vs_weight) for c in node.children if c.keyword == "weight"), vs_weight)
    rs = RealServerInfo(address, port, weight, f"{vs_index}-{rs_index}")
    info.real_servers.append(rs)
    children = [c for c in node.children if c.keyword not in CHECKERS and c.keyword not in DROP_RS]
    command = f"{state_dir}/check.sh {state_dir} {address} {port} {SHORT[daemon]}-{rs.tag}"
    children.append(Node(["MISC_CHECK"], [
        Node(["misc_path", f'"{command}"']),
        Node(["misc_timeout", str(MISC_TIMEOUT_S)]),
        Node(["retry", "0"]),  # one failed run is down: both daemons decide on the same run
    ]))
    return Node(node.words, children)


# ------------------------------------------------------------------------------------------------ steps


def _effective_quorum(svc: ServiceInfo) -> tuple[int, int]:
    """keepalived caps quorum at the total weight and hysteresis below quorum."""
    total = sum(rs.weight for rs in svc.real_servers)
    quorum = svc.quorum if svc.quorum is not None else 1
    if total and quorum > total:
        quorum = total
    hysteresis = min(svc.hysteresis, max(0, quorum - 1))
    return quorum, hysteresis


def _down_until(svc: ServiceInfo, lose: bool) -> set[str]:
    """Servers in config order taken down: until quorum is lost (lose), or the most that still keep it."""
    quorum, hysteresis = _effective_quorum(svc)
    floor = quorum - hysteresis
    alive = sum(rs.weight for rs in svc.real_servers)
    down: set[str] = set()
    for rs in svc.real_servers:
        if lose and (alive < floor or alive == 0):
            break
        if not lose and (alive - rs.weight < floor or alive - rs.weight == 0):
            break
        down.add(rs.flag)
        alive -= rs.weight
    return down


def _has_quorum_rules(svc: ServiceInfo) -> bool:
    return svc.quorum is not None or svc.sorry


def plan_steps(services: list[ServiceInfo]) -> list[tuple[str, set[str]]]:
    """(name, flags of the real servers down) per step; a step names its whole state, not a change."""
    everyone = {rs.flag for svc in services for rs in svc.real_servers}
    first: set[str] = set()
    edge: set[str] = set()
    for svc in services:
        if not svc.real_servers:
            continue
        if _has_quorum_rules(svc):
            first |= _down_until(svc, lose=True)  # loses quorum in one step: the sorry server goes in
            edge |= _down_until(svc, lose=False)  # as many as hysteresis allows without losing it
        else:
            first.add(svc.real_servers[0].flag)
            edge.add(svc.real_servers[-1].flag)
    steps = [
        ("all up", set()),
        ("first down (quorum services: enough to lose quorum)", first),
        ("all up again", set()),
        ("last down (quorum services: down to the hysteresis floor)", edge),
        ("all down", everyone),
        ("all up at last", set()),
    ]
    # a step that changes nothing (one real server: its last is its first and all of them) is left out
    return [step for i, step in enumerate(steps) if i == 0 or step[1] != steps[i - 1][1]]


# ------------------------------------------------------------------------------------------------ running


def sh(argv: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)


class NetnsShell:
    """One long-lived `sh` inside a namespace: reading its table costs one exec of ipvsadm, not `ip netns exec` too
    (execs are what is dear in the emulated guest)."""

    END = "__ipvs_compare_end__"

    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "sh"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ipvs_lines(self) -> list[str] | None:
        """`ipvsadm -Sn`, lines sorted (the kernel prints in hash order); None if it failed."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"ipvsadm -Sn 2>/dev/null; echo {self.END} $?\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        for line in self.proc.stdout:
            if line.startswith(self.END):
                return sorted(lines) if line.split()[1] == "0" else None
            if line.strip():
                lines.append(line.rstrip("\n"))
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def make_netns(netns: str) -> None:
    sh(["ip", "netns", "del", netns])
    for argv in (["ip", "netns", "add", netns], ["ip", "-n", netns, "link", "set", "lo", "up"]):
        proc = sh(argv)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")


@dataclass
class Daemon:
    kind: str
    netns: str
    dir: Path
    conf: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.dir / f"{SHORT[self.kind]}.log"

    def command(self) -> list[str]:
        s = SHORT[self.kind]
        pid, cpid = str(self.dir / f"{s}.pid"), str(self.dir / f"{s}-check.pid")
        if self.kind == "keepalived":
            return ["keepalived", "-n", "-l", "-D", "-G", "-C", "-f", str(self.conf), "-p", pid, "-c", cpid]
        return [sys.executable, "-m", "pykeepalived", "-n", "-l", "-D", "-G", "-C", "-f", str(self.conf),
                "--dataplane", "ipvs", "-p", pid, "-c", cpid, "--status-file", str(self.dir / "py-status.json")]

    def start(self) -> None:
        with open(self.log, "ab") as log:
            log.write(f"===== {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, *self.command()], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO),
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 6) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join([line for line in text.splitlines() if "not acted on" not in line][-lines:])

    def cpu_s(self) -> float | None:
        """CPU seconds used so far by the daemon's processes (its pid files' pids) and the scripts they reaped."""
        s = SHORT[self.kind]
        pids = set()
        for name in (f"{s}.pid", f"{s}-check.pid"):
            try:
                pids.add(int((self.dir / name).read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        if self.proc is not None:
            pids.add(self.proc.pid)
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        return round(total / os.sysconf("SC_CLK_TCK"), 1) if pids else None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def seen_runs(state: Path) -> dict[str, list[str]]:
    """Per checker tag (`ka-0-1`), the verdicts check.sh gave so far, oldest first."""
    out = {}
    for path in (state / "seen").iterdir():
        try:
            out[path.name] = path.read_text().split()
        except OSError:
            out[path.name] = []
    return out


def py_applied(daemon: Daemon, alive: list[list[bool]]) -> bool:
    """pykeepalived's status file shows every real server alive or not as wanted, and that table in the kernel.

    pykeepalived hands tables to IPVS from a worker thread, after checks and retries: under load in the guest its
    first table can reach the kernel tens of seconds after keepalived's. What is compared is the table, not how
    fast it gets there.
    """
    try:
        status = json.loads((daemon.dir / "py-status.json").read_text())
        got = [[bool(rs["alive"]) for rs in svc["real_servers"]] for svc in status["services"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(status.get("applied")) and got == alive


def wait_settled(daemons: list[Daemon], shells: list[NetnsShell], state: Path, tags: list[str],
                 before: dict[str, int], want: dict[str, str], alive: list[list[bool]],
                 timeout_s: float) -> tuple[dict[str, list[str] | None], dict[str, Any]]:
    """Wait until every daemon ran every checker twice since the step (so the later run surely saw it) with the
    step's verdict last, and pykeepalived says it decided so and the kernel has its table; then until both tables
    stay unchanged: STABLE_S when they agree, DIFFERENT_STABLE_S when not. Returns the tables and timings."""
    start = time.monotonic()
    checked_at: float | None = None
    missing: list[str] = []
    tables: dict[str, list[str] | None] = {}
    changed_at = start
    info: dict[str, Any] = {"timed_out": False}
    while True:
        now = time.monotonic()
        if checked_at is None:
            seen = seen_runs(state)
            missing = []
            for d in daemons:
                for tag in tags:
                    name = f"{SHORT[d.kind]}-{tag}"
                    runs = seen.get(name, [])[before.get(name, 0):]
                    if len(runs) < 2 or runs[-1] != want[tag]:
                        missing.append(name)
            py = [d for d in daemons if d.kind == "pykeepalived"]
            if not missing and py and not py_applied(py[0], alive):
                missing.append("pykeepalived's status: decided and applied")
            if not missing:
                checked_at = now
                info["checked_s"] = round(now - start, 1)
        if checked_at is not None:
            current = {d.kind: shell.ipvs_lines() for d, shell in zip(daemons, shells)}
            if current != tables:
                tables, changed_at = current, now
            quiet = now - max(changed_at, checked_at)
            agree = len({json.dumps(t) for t in tables.values()}) == 1
            if quiet >= (STABLE_S if agree else DIFFERENT_STABLE_S):
                break
        if now - start > timeout_s:
            info["timed_out"] = True
            if checked_at is None:
                info["unchecked"] = missing
            break
        dead = [d.kind for d in daemons if not d.alive()]
        if dead:
            info["died"] = dead
            break
        time.sleep(POLL_S)
    if not tables:
        tables = {d.kind: shell.ipvs_lines() for d, shell in zip(daemons, shells)}
    info["settled_s"] = round(time.monotonic() - start, 1)
    return tables, info


_print_lock = threading.Lock()


def say(text: str) -> None:
    with _print_lock:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


# what pykeepalived logs when the kernel (or pyroute2) refused an IPVS command; keepalived's checker has no retry
IPVS_ERROR_MARKERS = ("data plane ipvs:", "cannot open IPVS", "cannot remove IPVS", "IPVS refused")


def ipvs_errors(log: Path) -> list[str]:
    """pykeepalived's IPVS errors in its log (every line would be a netlink command the kernel did not take)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if any(m in line for m in IPVS_ERROR_MARKERS)]


def prepare_state(index: int) -> Path:
    """The config's guest-local directory: check.sh, down/ flags, seen/ verdicts; root-owned, 0755 all the way."""
    state = RUN_ROOT / f"c{index}"
    shutil.rmtree(state, ignore_errors=True)
    for sub in ("down", "seen"):
        (state / sub).mkdir(parents=True)
    for path in (RUN_ROOT, state, state / "down", state / "seen"):
        path.chmod(0o755)
    script = state / "check.sh"
    script.write_text(CHECK_SCRIPT)
    script.chmod(0o755)
    return state


def run_config(index: int, name: str, source: Path, workdir: Path) -> dict[str, Any]:
    """Both daemons on one config through every step; the result is also saved as workdir/NAME/result.json."""
    out_dir = workdir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    state = prepare_state(index)
    text = source.read_text(errors="replace")
    result: dict[str, Any] = {"name": name, "source": str(source), "steps": [], "error": None}
    daemons: list[Daemon] = []
    shells: list[NetnsShell] = []
    started = time.monotonic()
    try:
        services: list[ServiceInfo] = []
        for kind in DAEMONS:
            conf_text, services = transform(text, state, kind)
            conf = state / f"{SHORT[kind]}.conf"
            conf.write_text(conf_text)
            shutil.copy(conf, out_dir / conf.name)
            netns = f"ipvscmp{index}{SHORT[kind]}"
            make_netns(netns)
            daemons.append(Daemon(kind, netns, state, conf))
            shells.append(NetnsShell(netns))
        tags = [rs.tag for svc in services for rs in svc.real_servers]
        flags = {rs.tag: rs.flag for svc in services for rs in svc.real_servers}
        result["services"] = [svc.title for svc in services]
        for d in daemons:
            d.start()
        steps = plan_steps(services)
        result["planned_steps"] = len(steps)
        for n, (step, down) in enumerate(steps):
            before = {k: len(v) for k, v in seen_runs(state).items()}
            for flag in set(flags.values()):
                path = state / "down" / flag
                if flag in down:
                    path.touch()
                else:
                    path.unlink(missing_ok=True)
            want = {tag: "1" if flags[tag] in down else "0" for tag in tags}
            alive = [[rs.flag not in down for rs in svc.real_servers] for svc in services]
            tables, info = wait_settled(daemons, shells, state, tags, before, want, alive,
                                        START_TIMEOUT_S if n == 0 else STEP_TIMEOUT_S)
            result["steps"].append({"step": step, "down": sorted(down), **info, **tables})
            same = tables.get("keepalived") == tables.get("pykeepalived")
            say(f"{name}: step {n} '{step}': {'same' if same else 'DIFFERENT'} tables, settled in "
                f"{info['settled_s']} s{' (TIMED OUT)' if info['timed_out'] else ''}")
            if "died" in info:
                result["error"] = "; ".join(f"{d.kind} exited during step {n} '{step}':\n{d.log_tail()}"
                                            for d in daemons if not d.alive())
                break
    except Exception as exc:  # noqa: BLE001 - recorded for the host side, the other configs go on
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["cpu_s"] = {d.kind: d.cpu_s() for d in daemons}
        result["exit_codes"] = {d.kind: d.stop() for d in daemons}
        for shell in shells:
            shell.close()
        for d in daemons:
            sh(["ip", "netns", "del", d.netns])
            if d.log.exists():
                shutil.copy(d.log, out_dir / d.log.name)
        if daemons:
            result["py_ipvs_errors"] = ipvs_errors(daemons[-1].log)
        result["seconds"] = round(time.monotonic() - started, 1)
        (out_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def config_cost(source: Path) -> int:
    """How many real servers the config has: each costs two script runs a second (one per daemon)."""
    _, services = transform(source.read_text(errors="replace"), RUN_ROOT, "keepalived")
    return max(1, sum(len(svc.real_servers) for svc in services))


def same_experiment_key(source: Path) -> tuple[str, ...]:
    """What both daemons are given for a config, its state directory left out: two configs with the same key
    are the same experiment (checkers are all replaced by the same MISC_CHECK, so e.g. an HTTP_GET sample and
    a TCP_CHECK sample with the same virtual servers become one config), and give the same tables."""
    text = source.read_text(errors="replace")
    return tuple(transform(text, Path("/STATE"), kind)[0] for kind in DAEMONS)


def distinct_configs(names: list[str], sources: dict[str, Path]) -> dict[str, str]:
    """Each name -> the first name (in order) whose transformed configs are the same; itself if none is."""
    first: dict[tuple[str, ...], str] = {}
    return {n: first.setdefault(same_experiment_key(sources[n]), n) for n in names}


def run_within_budget(jobs: list[tuple[str, int, Callable[[], dict[str, Any]]]], budget: int) -> dict[str, Any]:
    """Run (name, cost, job) in threads, the biggest pending job that fits first, with at most `budget` cost
    running at once (a job bigger than the budget runs alone)."""
    cond = threading.Condition()
    used = 0
    results: dict[str, Any] = {}
    threads = []

    def worker(name: str, cost: int, job: Callable[[], dict[str, Any]]) -> None:
        nonlocal used
        try:
            results[name] = job()
        except Exception as exc:  # noqa: BLE001 - run_config records its own errors; this is a last resort
            results[name] = {"name": name, "steps": [], "error": f"{type(exc).__name__}: {exc}"}
        finally:
            with cond:
                used -= cost
                cond.notify_all()

    pending = sorted(((name, min(cost, budget), job) for name, cost, job in jobs), key=lambda j: -j[1])
    with cond:
        while pending:
            fit = next((j for j in pending if used + j[1] <= max(budget, 1)), None)
            if fit is None:
                cond.wait()
                continue
            pending.remove(fit)
            used += fit[1]
            thread = threading.Thread(target=worker, args=fit, name=fit[0])
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join()
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="where results.json and per-config files go")
    p.add_argument("--config", action="append", default=[], help="only this config (file name); repeatable")
    p.add_argument("--budget", type=int, default=BUDGET_RS,
                   help=f"real servers checked at the same time, over all configs running (default {BUDGET_RS})")
    args = p.parse_args()
    sources = config_sources()
    wanted = args.config or list(sources)
    unknown = [n for n in wanted if n not in sources]
    if unknown:
        print(f"unknown config(s): {', '.join(unknown)}; known: {', '.join(sources)}", file=sys.stderr)
        return 2
    if shutil.which("keepalived") is None or shutil.which("ipvsadm") is None:
        print("keepalived and ipvsadm are needed", file=sys.stderr)
        return 2
    for module in MODULES:
        sh(["modprobe", module])
    args.workdir.mkdir(parents=True, exist_ok=True)
    RUN_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    started = time.monotonic()
    runnable = [(i, n) for i, n in enumerate(wanted) if n not in EXCLUDED]
    # A config whose transformed configs equal an earlier one's is not run again: its result is that run's.
    same_as = distinct_configs([n for _, n in runnable], sources)
    done = run_within_budget([(n, config_cost(sources[n]), partial(run_config, i, n, sources[n], args.workdir))
                              for i, n in runnable if same_as[n] == n], args.budget)
    results = {n: done[n] if same_as[n] == n else {**done[same_as[n]], "name": n, "source": str(sources[n]),
                                                   "same_as": same_as[n]}
               for _, n in runnable}
    summary = {"configs": results, "excluded": {n: EXCLUDED[n] for n in wanted if n in EXCLUDED},
               "neutralised": NEUTRALISED,
               "same_as": {n: first for n, first in same_as.items() if n != first},
               "elapsed_s": round(time.monotonic() - started, 1)}
    (args.workdir / "results.json").write_text(json.dumps(summary, indent=1))
    different = [n for n, r in results.items()
                 if r["error"] or any(s.get("keepalived") != s.get("pykeepalived") for s in r["steps"])]
    say(f"{len(results)} configs in {summary['elapsed_s']} s; different or failed: {', '.join(different) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
