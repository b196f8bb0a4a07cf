"""The top-level keywords that name the daemon's namespace and instance.

keepalived 2.2.7 takes `net_namespace`, `net_namespace_ipvs`,
`namespace_with_ipsets`, `instance` and `use_pid_dir` at the top level of the
file, not inside global_defs (there they are unknown keywords), and keeps them
with its global data. A second `net_namespace`, `net_namespace_ipvs` or
`instance` is a configuration error ("Duplicate ... - ignoring"), as is
`net_namespace` or `instance` without a name; only the first word counts.
What they change at run time (the namespace the daemon runs in, the pid file,
dump file and syslog names) is in config/instance_names.py and daemon/netns.py.
"""

from __future__ import annotations

from .context import ParseContext
from .lexer import Segment
from .model import KeepalivedConfig
from .registry import Block


def _net_namespace(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> None:
    g = config.global_defs
    if len(seg.words) < 2:
        ctx.error(seg, "net_namespace name missing - ignoring")
    elif g.net_namespace is not None:
        ctx.error(seg, f"Duplicate net_namespace definition {seg.words[1]} - ignoring")
    else:
        g.net_namespace = seg.words[1]
        g.use_pid_dir = True


def _net_namespace_ipvs(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> None:
    g = config.global_defs
    if g.net_namespace_ipvs is not None:
        ctx.error(seg, f"Duplicate net_namespace_ipvs definition {' '.join(seg.words[1:2])} - ignoring")
    else:
        g.net_namespace_ipvs = seg.words[1] if len(seg.words) > 1 else ""  # no name: the default namespace


def _namespace_with_ipsets(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> None:
    config.global_defs.namespace_with_ipsets = True


def _instance(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> None:
    g = config.global_defs
    if len(seg.words) < 2:
        ctx.error(seg, "instance name missing - ignoring")
    elif g.instance is not None:
        ctx.error(seg, f"Duplicate instance definition {seg.words[1]} - ignoring")
    else:
        g.instance = seg.words[1]
        g.use_pid_dir = True


def _use_pid_dir(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> None:
    config.global_defs.use_pid_dir = True


def register_namespace_keywords(root: Block) -> None:
    """Add the namespace and instance keywords to the top level (their status comes from config/support.py)."""
    root.line("net_namespace", _net_namespace, "run in this network namespace (/run/netns/NAME)")
    root.line("net_namespace_ipvs", _net_namespace_ipvs, "IPVS in another namespace: refused at start")
    root.line("namespace_with_ipsets", _namespace_with_ipsets, "ipsets in the namespace (no ipsets here)")
    root.line("instance", _instance, "instance name in pid files and the syslog ident")
    root.line("use_pid_dir", _use_pid_dir, "pid files under /run/keepalived")
