"""`pykeepalived doctor [-f FILE] [--peer-config FILE2] [--real-server] [--json]`: the preflight.

On a router: the config's `-t` verdict first, then this host (this network
namespace: run it with `ip netns exec NS` for a namespace) against what the
Red Hat guide asks of an LVS router and what commonly breaks it, then the
route-back probe of every NAT real server, then (with `--peer-config`) the
two routers' configs against each other. On a DR real server
(`--real-server`, or no config file and a VIP on lo or a dummy device):
arp_ignore/arp_announce. One line per finding with its fix, a summary line;
exit 0 when clean, 1 with findings, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from ..cmdline.help_format import HelpFormatter
from ..daemon.config_source import load
from ..errors import PyKeepalivedError
from .facts import Finding
from .host_rules import config_findings, host_findings, probe_findings, probe_targets, real_server_findings
from .host_rules import real_server_vips
from .peer import peer_findings
from .report import exit_status, json_report, text_report

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pykeepalived doctor", formatter_class=HelpFormatter,
        description="Check this host (this network namespace) and the config against what the RHEL load balancer "
                    "guide asks of LVS routers and real servers; one line per finding with its fix. "
                    "Exit 0 clean, 1 findings, 2 usage.")
    add = p.add_argument
    add("-f", "--use-file", metavar="FILE", default=DEFAULT_CONFIG,
        help=f"configuration file (default {DEFAULT_CONFIG})")
    add("--peer-config", metavar="FILE2", help="the other router's configuration: compare the pair")
    add("-i", "--config-id", metavar="ID", help="config id for @ID lines of FILE (default: short hostname)")
    add("--peer-config-id", metavar="ID", help="config id for @ID lines of FILE2 (default: --config-id)")
    add("--real-server", action="store_true",
        help="check this host as a DR real server (default when FILE is missing and lo or a dummy device holds a VIP)")
    add("--dataplane", choices=("auto", "ipvs", "nftables", "none"), default="auto",
        help="the data plane the daemon will be started with (default auto)")
    add("--no-probe", action="store_true", help="do not probe the NAT real servers' route back")
    add("--probe-timeout", type=float, default=2.0, metavar="S", help="seconds to wait for each probe (default 2)")
    add("--json", action="store_true", help="the report as JSON")
    add("-q", "--quiet", action="store_true", help="leave out INFO notes")
    return p


def _router(args: argparse.Namespace) -> list[Finding]:
    from .gather import gather
    from .route_probe import run_probes

    result = load(args.use_file, args.config_id, host_checks=True)
    findings = config_findings(result.diagnostics, args.use_file)
    if not result.errors and result.config.virtual_servers:
        findings += _plan_findings(result.config, args.use_file)
    facts = gather(result.config, args.dataplane)
    findings += host_findings(result.config, facts, os.path.realpath(args.use_file))
    targets, notes = probe_targets(result.config, facts)
    findings += notes
    if targets and not args.no_probe:
        findings += probe_findings(run_probes(targets, args.probe_timeout))
    elif targets:
        findings.append(Finding("INFO", "nat-route", f"{len(targets)} route-back probe(s) not run (--no-probe)"))
    if args.peer_config:
        peer = load(args.peer_config, args.peer_config_id or args.config_id, host_checks=False)
        findings += [Finding(f.severity, "peer-config", f.message, f.fix, f.where)
                     for f in config_findings(peer.errors, args.peer_config)]
        findings += peer_findings(result.config, peer.config, args.use_file, args.peer_config)
    return findings


def _plan_findings(config: object, path: str) -> list[Finding]:
    """A checker the daemon cannot build stops it at start: part of the verdict, as `-t` says it."""
    from ..check.plan import build_plan
    from ..config.model import KeepalivedConfig

    assert isinstance(config, KeepalivedConfig)
    try:
        build_plan(config)
    except PyKeepalivedError as exc:
        return [Finding("ERROR", "config", str(exc), f"correct it; `pykeepalived -t -f {path}` must be clean")]
    return []


def _real_server_mode(args: argparse.Namespace) -> bool:
    if args.real_server:
        return True
    if os.path.exists(args.use_file):
        return False
    from .gather import read_interfaces
    from .facts import HostFacts

    return bool(real_server_vips(HostFacts(interfaces=read_interfaces())))


def doctor_main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.probe_timeout <= 0:
        print("pykeepalived doctor: --probe-timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    host = socket.gethostname()
    try:
        if _real_server_mode(args):
            from .gather import gather

            findings, subject = real_server_findings(gather(None)), f"DR real server {host}"
        else:
            findings, subject = _router(args), f"router {host} ({args.use_file})"
    except PyKeepalivedError as exc:
        print(f"pykeepalived doctor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.quiet:
        findings = [f for f in findings if f.counts]
    sys.stdout.write(json_report(findings, subject) if args.json else text_report(findings, subject))
    return exit_status(findings)
