"""The `pykeepalived` command: keepalived 2.2.7's flags, plus our own subcommands.

Only the edge of the program catches exceptions: each of our own errors
becomes one clear line and an exit code, never a traceback, and a closed
output pipe ends a command quietly (cmdline/output.py).

Each command imports only what it needs (measured by bench/startup.py): `-t`
reads the configuration and never imports the daemon, asyncio, netlink or
the checkers; the daemon's modules are imported when a daemon starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .cmdline.help_format import HelpFormatter
from .cmdline.flags import SIGNUMS, add_keepalived_flags, normalize_argv, not_done, parse_umask, version_text
from .cmdline.output import run_quietly
from .daemon.paths import DEFAULT_CHECKERS_PID_FILE, DEFAULT_PID_FILE, DEFAULT_STATUS_FILE, DEFAULT_VRRP_PID_FILE
from .daemon.config_source import load, load_recorded, load_snapshot
from .errors import PyKeepalivedError

if TYPE_CHECKING:
    from .config import LoadResult
    from .api.settings import ApiSettings
    from .config.model import KeepalivedConfig

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXIT_OK = 0
EXIT_CONFIG_ERROR = 1
EXIT_NOT_IMPLEMENTED = 3
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pykeepalived", formatter_class=HelpFormatter,
        description="A keepalived-compatible high-availability load balancer. Takes keepalived 2.2.7's flags "
                    "(docs/command-line.md); subcommands: genhash, probe, status, reload, ctl, doctor, lab.",
    )
    add = p.add_argument
    add("-f", "--use-file", metavar="FILE", default=DEFAULT_CONFIG, help="configuration file")
    add("-t", "--config-test", action="store_true",
        help="-t[=LOG_FILE]: check the configuration and exit (messages to LOG_FILE, default stderr)")
    add("--dump-config", action="store_true", help="print the configuration model as JSON and exit")
    add("-n", "--dont-fork", action="store_true", help="do not fork the daemon")
    add("-l", "--log-console", action="store_true", help="log to the console")
    add("-D", "--log-detail", action="count", default=0, help="detailed log messages")
    add("-G", "--no-syslog", action="store_true", help="do not log via syslog")
    add("-S", "--log-facility", metavar="([0-7]|local[0-7]|user|daemon)",
        help="syslog facility LOG_LOCAL[0-7], user or daemon (default)")
    add("-P", "--vrrp", action="store_true", help="run only the VRRP subsystem")
    add("-C", "--check", action="store_true", help="run only the health-checker subsystem")
    add("-p", "--pid", metavar="FILE", help="parent pid file")
    add("-r", "--vrrp_pid", metavar="FILE", help="VRRP child pid file")
    add("-c", "--checkers_pid", metavar="FILE", help="checker child pid file")
    add("-i", "--config-id", metavar="ID", help="config id for @ID lines (default: short hostname)")
    add("-s", "--namespace", metavar="NAME", help="run in network namespace NAME (overrides net_namespace)")
    add("-v", "--version", action="store_true", help="print the version and exit")
    add_keepalived_flags(p)
    add("--no-host-checks", action="store_true",
        help="with -t: do not check interfaces and scripts against this machine")
    add("--status-file", metavar="FILE", default=DEFAULT_STATUS_FILE,
        help=f"where the checker keeps its state for `pykeepalived status` (default {DEFAULT_STATUS_FILE})")
    add("--api", action="append", metavar="unix:PATH|HOST:PORT", default=[],
        help="serve the HTTP API (state, /metrics, the page) there; repeatable (default: global_defs' "
             "pykeepalived_api, else off); TCP needs --api-token-file (docs/api.md)")
    add("--api-token-file", metavar="FILE", help="the API's bearer token, the file's first line (required on TCP; "
        "default: pykeepalived_api_token_file)")
    add("--api-tls-cert", metavar="FILE", help="serve the API over TLS with this PEM certificate")
    add("--api-tls-key", metavar="FILE", help="the TLS certificate's PEM private key")
    add("--api-runtime", action="store_true", help="enable the runtime API (drain, weight, maintenance; "
        "default: pykeepalived_api_runtime, else off)")
    add("--checker-workers", type=int, metavar="N",
        help="processes sharing the health checks (default: 1, the checker process itself runs them all)")
    add("--dataplane", choices=("auto", "ipvs", "nftables", "none"), default="auto",
        help="what forwards the virtual services: ipvs, nftables, or none (checkers only); auto: IPVS if the "
             "kernel has it, else nftables (default: global_defs' pykeepalived_dataplane, else auto)")
    add("--strict-dataplane", action="store_true", help="refuse a config with a virtual server the data plane cannot "
        "build (default: warn, and run the others without it)")
    add("--child", action="store_true", help=argparse.SUPPRESS)
    add("--checker-worker", metavar="N/COUNT", help=argparse.SUPPRESS)
    add("--bfd-child", action="store_true", help=argparse.SUPPRESS)  # daemon/run_bfd.py
    add("--parent-pid", type=int, metavar="PID", help=argparse.SUPPRESS)  # daemon/lifeline.py
    add("--config-fd", type=int, metavar="FD", help=argparse.SUPPRESS)  # host/recording.py
    add("--report-fd", type=int, metavar="FD", help=argparse.SUPPRESS)  # daemon/child_report.py
    add("--command-fd", type=int, metavar="FD", help=argparse.SUPPRESS)  # daemon/command_server.py
    return p


class _SnapshotUnreadable(PyKeepalivedError):
    """The configuration snapshot a child was given cannot be read."""


def _daemon_config(args: argparse.Namespace, host_checks: bool = True) -> tuple[LoadResult, int]:
    """The configuration and the memfd that holds it: the one passed down (`--config-fd`), else read now."""
    from .config.snapshot import SnapshotError
    from .host.recording import read_snapshot_fd, snapshot_memfd

    if args.config_fd is not None:
        owner = args.parent_pid if args.checker_worker else None  # a worker reads its checker's fd
        try:
            snapshot = read_snapshot_fd(args.config_fd, owner)
        except (OSError, SnapshotError) as exc:
            raise _SnapshotUnreadable(f"cannot read the configuration snapshot (fd {args.config_fd}): {exc}") \
                from None
        if args.checker_worker:
            return load_snapshot(snapshot, host_checks), -1
        os.set_inheritable(args.config_fd, False)  # pass_fds made it inheritable: scripts must not get it
        return load_snapshot(snapshot, host_checks), args.config_fd
    result, snapshot = load_recorded(args.use_file, args.config_id, host_checks)
    if result.start_errors:
        return result, -1
    if result.config.global_defs.random_seed is not None:  # the values the children will see (-P, -C)
        result = load_snapshot(snapshot, host_checks)
    return result, snapshot_memfd(snapshot)


def _print_diagnostics(result: LoadResult) -> None:
    for diag in result.diagnostics:
        print(diag.format(), file=sys.stderr)


def _subsystems(args: argparse.Namespace, config: KeepalivedConfig) -> tuple[bool, bool]:
    """Which subsystems to run: the flags say, else whatever the config has (as keepalived decides)."""
    if args.all:
        return True, True
    if args.vrrp or args.check:
        return bool(args.vrrp), bool(args.check)
    has_vrrp = bool(config.vrrp_instances or config.static_ipaddresses or config.static_routes or config.static_rules)
    has_check = bool(config.virtual_servers)
    return has_vrrp or not has_check, has_check


def _checker_process(args: argparse.Namespace) -> bool:
    """Whether this process will serve the health checkers only (-C alone, a checker child, a checker worker).

    Decided from the flags alone, before the configuration is read: that is
    when host/openssl_guard.py must keep OpenSSL out.
    """
    if args.checker_worker:
        return True
    return bool(args.check and not args.vrrp and not args.all and not args.bfd_child
                and not args.config_test and not args.dump_config)


def _log_flags(args: argparse.Namespace) -> list[str]:
    """The logging flags, as the children and workers get them (-D as often as it was given)."""
    flags = [flag for flag, on in (("-l", args.log_console), ("-G", args.no_syslog)) if on]
    return flags + ["-D"] * args.log_detail


def _child_base_argv(args: argparse.Namespace, facility: int) -> list[str]:
    from .cmdline.facility import facility_name

    base = ["-f", os.path.abspath(args.use_file), "-p", args.pid or DEFAULT_PID_FILE,
            "-r", args.vrrp_pid or DEFAULT_VRRP_PID_FILE, "-c", args.checkers_pid or DEFAULT_CHECKERS_PID_FILE,
            "--status-file", args.status_file, "-S", facility_name(facility)]
    if args.config_id is not None:
        base += ["-i", args.config_id]
    if args.namespace:  # for the children's names; they inherit the namespace itself (daemon/netns.py)
        base += ["-s", args.namespace]
    if args.checker_workers is not None:
        base += ["--checker-workers", str(args.checker_workers)]
    if args.dataplane != "auto":
        base += ["--dataplane", args.dataplane]
    if args.umask is not None:
        base += ["-u", args.umask]
    base += [flag for flag, on in (("-I", args.dont_release_ipvs), ("-V", args.dont_release_vrrp)) if on]
    return base + _log_flags(args)


def _check_plan(config: KeepalivedConfig, dataplane: str = "auto", strict: bool = False) -> str | None:
    """Build every checker's probe once, and ask the data plane whether it can build every service.

    A checker we cannot run is refused before starting (and by -t); a service
    the data plane cannot build is a warning (keepalived accepts it) unless strict.
    """
    import gc

    from .check.plan import build_plan
    from .lvs.choose import dataplane_problems, limit_warning

    try:
        build_plan(config)
        # the plan just built holds reference cycles: free it now, before the daemon builds its own (at 6,000
        # real servers it would otherwise linger, megabytes, until a full collection that may never come)
        gc.collect()
        if (problems := dataplane_problems(config, dataplane)) and strict:
            return "\n".join(problems)
        for problem in problems:
            print(limit_warning(problem), file=sys.stderr)
    except PyKeepalivedError as exc:
        return str(exc)
    return None


def _worker_argv(args: argparse.Namespace, config_fd: int, facility: int) -> tuple[str, ...]:
    """A checker worker's command line; the checker adds `--parent-pid` (its own pid, once daemonised)."""
    from .cmdline.facility import facility_name

    argv = [sys.executable, "-m", "pykeepalived", "-f", os.path.abspath(args.use_file), "--dont-fork",
            "--config-fd", str(config_fd), "-S", facility_name(facility)]
    if args.namespace:  # for the syslog ident only: workers inherit the namespace (daemon/netns.py)
        argv += ["-s", args.namespace]
    if args.config_id is not None:
        argv += ["-i", args.config_id]
    return tuple(argv + _log_flags(args))


def _facility(args: argparse.Namespace) -> int:
    """`-S`'s facility code; an invalid one is reported and the default kept, as keepalived does."""
    from .cmdline.facility import DEFAULT_FACILITY, parse_facility

    if args.log_facility is None:
        return DEFAULT_FACILITY
    code = parse_facility(args.log_facility)
    if code is None:
        print(f"Invalid log facility '{args.log_facility}'", file=sys.stderr)
        return DEFAULT_FACILITY
    return code


def _umask(args: argparse.Namespace) -> int | None:
    if args.umask is None:
        return None
    mask = parse_umask(args.umask)
    if mask is None:
        print(f"Invalid --umask option {args.umask}", file=sys.stderr)
    return mask


def _allow_core_dumps() -> None:
    """-m / -M: no limit on the core file size (keepalived also makes the process dumpable)."""
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError) as exc:
        print(f"pykeepalived: cannot allow core dumps: {exc}", file=sys.stderr)


def _dump_lines(config: KeepalivedConfig) -> tuple[str, ...]:
    """-d: the configuration as the daemon will run it, logged at start (keepalived logs its own dump)."""
    from .config.dump import dump_json

    return tuple(f"config: {line}" for line in dump_json(config).splitlines())


def _run_daemon(args: argparse.Namespace) -> int:
    from .daemon.run import DaemonOptions

    facility = _facility(args)
    if args.checker_worker:
        from .check.workers import parse_shard

        try:
            shard = parse_shard(args.checker_worker)
        except ValueError as exc:
            print(f"pykeepalived: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.config_fd is not None and args.parent_pid is None:
            print("pykeepalived: --config-fd in a checker worker needs --parent-pid", file=sys.stderr)
            return EXIT_USAGE
        worker, _ = _daemon_config(args, host_checks=False)
        if worker.start_errors:
            return EXIT_CONFIG_ERROR
        from .daemon.netns import naming_of
        from .daemon.run import run_check_worker

        return run_check_worker(worker.config, DaemonOptions(
            foreground=True, log_console=args.log_console, log_detail=bool(args.log_detail),
            no_syslog=args.no_syslog, log_facility=facility, worker_shard=shard,
            naming=naming_of(worker.config, args.namespace)))
    umask = _umask(args)
    if args.core_dump or args.core_dump_pattern:
        _allow_core_dumps()
    from .daemon import netns
    from .host.netns_enter import NetnsError

    try:
        if args.child:  # already in our parent's namespace; -s only names our files and syslog ident
            (result, config_fd), ns_choice = _daemon_config(args), netns.NamespaceChoice(args.namespace)
        else:  # enter net_namespace / -s before reading host facts; children and workers inherit it
            (result, config_fd), ns_choice = netns.read_in_namespace(
                args.namespace, lambda: _daemon_config(args), lambda r: r[0].config,
                lambda r: os.close(r[1]) if r[1] >= 0 else None)
    except NetnsError as exc:
        print(f"pykeepalived: {exc}", file=sys.stderr)
        return netns.EXIT_NO_NAMESPACE
    _print_diagnostics(result)
    if result.start_errors:
        print(f"{args.use_file}: {len(result.start_errors)} configuration error(s); not starting", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    namespace_flag = args.namespace  # -s as given (apply_naming replaces it): a reload may not change it
    naming = netns.apply_naming(args, result.config, ns_choice.namespace, DEFAULT_STATUS_FILE)
    if ipvs_problem := netns.ipvs_namespace_problem(result.config, ns_choice.namespace):
        print(f"pykeepalived: {ipvs_problem}; not starting", file=sys.stderr)
        return EXIT_NOT_IMPLEMENTED
    vrrp, check = _subsystems(args, result.config)
    if check and not args.bfd_child and (problem := _check_plan(result.config, args.dataplane, args.strict_dataplane)):
        print(f"pykeepalived: {problem}; not starting", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    parent = not (args.vrrp or args.check or args.child) or args.all
    if (api := _api_settings(args, result.config, parent)) is None:
        return EXIT_CONFIG_ERROR
    opts = DaemonOptions(
        foreground=args.dont_fork,
        log_console=args.log_console,
        log_detail=bool(args.log_detail),
        log_facility=facility,
        no_syslog=args.no_syslog,
        pid_file=args.pid or DEFAULT_PID_FILE,
        vrrp_pid_file=args.vrrp_pid or DEFAULT_VRRP_PID_FILE,
        checkers_pid_file=args.checkers_pid or DEFAULT_CHECKERS_PID_FILE,
        status_file=args.status_file,
        child=args.child,
        config_file=args.use_file,
        config_id=args.config_id,
        config_fd=config_fd,
        report_fd=args.report_fd if args.report_fd is not None else -1,
        command_fd=args.command_fd if args.command_fd is not None else -1,
        checker_workers=args.checker_workers,
        worker_argv=_worker_argv(args, config_fd, facility),
        dataplane=args.dataplane,
        naming=naming,
        overridden_namespace=ns_choice.overridden,
        umask=umask,
        respawn=not args.dont_respawn,
        release_dataplane=not args.dont_release_ipvs,
        release_vrrp=not args.dont_release_vrrp,
        bfd=not args.no_bfd,
        api=api,
        snmp=bool(args.snmp), snmp_socket=args.snmp_agent_socket,
        notes=() if args.child else (*not_done(args), *(_dump_lines(result.config) if args.dump_conf else ())),
    )
    if parent:
        # as keepalived: a parent that restarts whichever subsystem dies
        from .daemon.supervisor import run_supervisor

        return run_supervisor(_child_base_argv(args, facility), opts, vrrp=vrrp, check=check, config_fd=config_fd,
                              process_name=result.config.global_defs.process_name,
                              config=result.config, bfd=bool(result.config.bfd_instances) and not args.no_bfd,
                              follow_config=not args.all, namespace_flag=namespace_flag)
    if args.bfd_child:  # the BFD child of a parent (daemon/run_bfd.py)
        from .daemon.run_bfd import run_bfd

        return run_bfd(result.config, opts)
    from .daemon.run import run_check, run_vrrp

    return run_check(result.config, opts) if check else run_vrrp(result.config, opts)


def _api_settings(args: argparse.Namespace, config: KeepalivedConfig, parent: bool,
                  refusal: str = "; not starting") -> ApiSettings | None:
    """The HTTP API's settings (api/settings.py), checked before forking; None (and a message) if refused."""
    from .api.settings import ApiSettings, ApiSettingsError, resolve

    if not parent:  # only the parent serves the API
        return ApiSettings()
    g = config.global_defs
    try:
        return resolve(args.api, args.api_token_file, args.api_tls_cert, args.api_tls_key, args.api_runtime,
                       g.pykeepalived_api, g.pykeepalived_api_token_file, g.pykeepalived_api_tls_cert,
                       g.pykeepalived_api_tls_key, g.pykeepalived_api_runtime,
                       f"{g.pykeepalived_api_location}: pykeepalived_api")
    except ApiSettingsError as exc:
        print(f"pykeepalived: {exc}{refusal}", file=sys.stderr)
        return None


def genhash_main(argv: Sequence[str]) -> int:
    """`pykeepalived genhash`: keepalived's genhash flags (-s -p -u ...), or our `--url URL` form."""
    if not _our_genhash_form(argv):
        from .cmdline.genhash import genhash_main as keepalived_genhash

        return keepalived_genhash(argv, prog="pykeepalived genhash")
    from .check.genhash import GenhashError, fetch

    p = argparse.ArgumentParser(prog="pykeepalived genhash", formatter_class=HelpFormatter,
                                description="Print the MD5 digest of a page, for HTTP_GET/SSL_GET url blocks. "
                                            "keepalived's genhash flags work too: -s SERVER -p PORT -u PATH ...")
    p.add_argument("--url", required=True, help="http://ADDRESS[:PORT]/PATH or https://...")
    p.add_argument("--virtualhost", help="Host header (and TLS server name)")
    p.add_argument("--verify", action="store_true", help="verify the TLS certificate")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    p.add_argument("--verbose", action="store_true", help="also print the status and body length")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        got = fetch(args.url, virtualhost=args.virtualhost, verify_tls=args.verify, timeout_s=args.timeout)
    except GenhashError as exc:
        print(f"pykeepalived genhash: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.verbose:
        print(f"HTTP status {got.status}, {len(got.body)} body bytes")
    print(got.digest)
    return EXIT_OK


def _our_genhash_form(argv: Sequence[str]) -> bool:
    """Our older `--url http://...` form (a whole URL, --virtualhost, --verify), not keepalived's flags."""
    words = list(argv)
    if any(w in ("--virtualhost", "--verify") or w.startswith(("--virtualhost=", "--verify")) for w in words):
        return True
    return any("://" in w for w in words)


def config_test(args: argparse.Namespace) -> int:
    """-t: the verdict, with keepalived 2.2.7's exit status (cmdline/exit_status.py); --dump-config too."""
    from .cmdline.exit_status import EXIT_CONFIG_ERRORS, config_test_status

    if args.config_test_log:
        try:  # keepalived: appended to, created 0644, never through a symlink
            fd = os.open(args.config_test_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644)
        except OSError as exc:
            print(f"Unable to open config-test log file {args.config_test_log} {exc.errno} - {exc.strerror}",
                  file=sys.stderr)
            return 1
        sys.stderr.flush()
        os.dup2(fd, sys.stderr.fileno())
        os.close(fd)
    from .daemon.netns import read_for_test  # checks inside net_namespace / -s, as keepalived

    result, ns_warning = read_for_test(
        args.namespace, lambda host: load(args.use_file, args.config_id, host and not args.no_host_checks),
        lambda r: r.config)
    _print_diagnostics(result)
    if ns_warning:
        print(ns_warning, file=sys.stderr)
    if args.dump_config:
        from .config.dump import dump_json

        print(dump_json(result.config))
        return EXIT_CONFIG_ERROR if result.errors else EXIT_OK
    if not result.errors and result.config.virtual_servers and (
            problem := _check_plan(result.config, args.dataplane, args.strict_dataplane)):
        print(problem, file=sys.stderr)
        return EXIT_CONFIG_ERRORS
    if not result.errors and not args.no_host_checks and _api_settings(args, result.config, True, "") is None:
        return EXIT_CONFIG_ERRORS  # the API as the daemon would start it: TCP without a token, a missing file
    if result.errors:
        print(f"{args.use_file}: {len(result.errors)} configuration error(s)", file=sys.stderr)
    return config_test_status(result.diagnostics)


def main(argv: Sequence[str] | None = None) -> int:
    """The command's entry point: never a traceback, not even when the reader of its output goes away."""
    return run_quietly(lambda: _main(list(sys.argv[1:] if argv is None else argv),
                                     os.path.basename(sys.argv[0]) if argv is None else "pykeepalived"))


def _main(argv: list[str], called_as: str) -> int:
    if called_as == "genhash":  # a `genhash` link to pykeepalived, as Debian's /usr/bin/genhash -> keepalived
        from .cmdline.genhash import genhash_main as keepalived_genhash

        return keepalived_genhash(argv)
    if argv[:1] == ["genhash"]:
        return genhash_main(argv[1:])
    if "-T" in argv or "--genhash" in argv:  # keepalived -T: genhash mode, meant to be the first option
        from .cmdline.genhash import genhash_main as keepalived_genhash

        at = next(i for i, a in enumerate(argv) if a in ("-T", "--genhash"))
        if at:
            print(f"Warning -- `{argv[at]}` not used as first option, previous options ignored", file=sys.stderr)
        return keepalived_genhash(argv[at + 1:], prog="pykeepalived --genhash")
    if argv[:1] == ["probe"]:
        from .check.once import probe_main

        return probe_main(argv[1:])
    if argv[:1] == ["reload"]:  # signal the running daemon and wait for the outcome (daemon/reload_client.py)
        from .daemon.reload_client import reload_main

        return reload_main(argv[1:])
    if argv[:1] == ["ctl"]:  # the runtime API's client (ctl.py)
        from .ctl import ctl_main

        return ctl_main(argv[1:])
    if argv[:1] == ["status"]:
        from .status import status_main

        return status_main(argv[1:])
    if argv[:1] == ["doctor"]:
        from .doctor.command import doctor_main

        return doctor_main(argv[1:])
    if argv[:1] == ["lab"]:
        from .lab.lab_cli import lab_main

        return lab_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(normalize_argv(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.signum is not None:
        if args.signum not in SIGNUMS:
            print(f"Unknown sigfunc {args.signum}", file=sys.stderr)
            return 1
        print(SIGNUMS[args.signum])
        return EXIT_OK
    if args.version:
        sys.stderr.write(version_text(__version__))
        return EXIT_OK
    if _checker_process(args):  # before anything imports asyncio: OpenSSL only once a TLS checker needs it
        from .host import openssl_guard

        openssl_guard.keep_out()
    if args.parent_pid is not None:  # started by our parent: die with it (first thing, before the config)
        from .daemon.lifeline import ParentGone, die_with_parent

        try:
            die_with_parent(args.parent_pid)
        except (ParentGone, OSError) as exc:
            print(f"pykeepalived: {exc}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
    try:
        if args.config_test or args.dump_config:
            return config_test(args)
        return _run_daemon(args)
    except PyKeepalivedError as exc:
        print(f"pykeepalived: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        return 130
