"""keepalived 2.2.7's own flags: the parts that are not plain argparse options.

- `-t[=LOG_FILE]` and `-M[=PATTERN]` take an optional argument that must be
  attached (getopt's `t::`): `-tFILE` or `--config-test=FILE`; `-t FILE`
  leaves FILE a separate word, as in keepalived. `normalize_argv` rewrites
  the attached forms into hidden options argparse can take.
- `--signum=NAME` prints the signal number keepalived uses for a function.
- `-u MASK` is a number in C's notation (0 prefix octal, 0x hex).
- Flags whose subsystem pykeepalived does not have are accepted and say so
  in one log line each (`not_done`), never a failure.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

# keepalived 2.2.7 --signum (lib/signals.c get_signum), as printed by /usr/sbin/keepalived on Linux:
# SIGRTMIN is 34 and SIGRTMAX 64 with glibc.
SIGNUMS = {"STOP": 15, "RELOAD": 1, "DATA": 10, "STATS": 12, "STATS_CLEAR": 63, "JSON": 36}
KEEPALIVED_COMPAT_VERSION = "2.2.7"

CONFIG_TEST_LOG = "--config-test-log"
CORE_PATTERN = "--core-dump-pattern-value"


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Rewrite keepalived's optional-argument forms for argparse (see the module's docstring)."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("--config-test="):
            out += ["-t", f"{CONFIG_TEST_LOG}={arg.split('=', 1)[1]}"]
        elif arg.startswith("-t") and not arg.startswith("--") and len(arg) > 2:
            out += ["-t", f"{CONFIG_TEST_LOG}={arg[2:].removeprefix('=')}"]
        elif arg.startswith("--core-dump-pattern="):
            out += ["-M", f"{CORE_PATTERN}={arg.split('=', 1)[1]}"]
        elif arg.startswith("-M") and not arg.startswith("--") and len(arg) > 2:
            out += ["-M", f"{CORE_PATTERN}={arg[2:]}"]
        else:
            out.append(arg)
    return out


def add_keepalived_flags(add: "argparse._ActionsContainer") -> None:
    """keepalived's flags that pykeepalived did not have before (the older ones stay in cli.py)."""
    a = add.add_argument
    a("-B", "--no_bfd", action="store_true", help="do not run the BFD subsystem")
    a("--all", action="store_true", help="run every subsystem's process even if the config has nothing for it")
    a("-u", "--umask", metavar="MASK", help="umask for the daemon's files (numeric: 0177, 0x7f, 127)")
    a("-X", "--release-vips", action="store_true", help="drop VIPs on a transition from a signal")
    a("-V", "--dont-release-vrrp", action="store_true", help="do not remove VRRP VIPs and routes when stopping")
    a("-I", "--dont-release-ipvs", action="store_true", help="do not remove the virtual services when stopping")
    a("-R", "--dont-respawn", action="store_true", help="do not restart a child process that dies")
    a("-d", "--dump-conf", action="store_true", help="log the configuration at start")
    a("-T", "--genhash", action="store_true", help="genhash mode (must be the first option): see `genhash -h`")
    a("-a", "--address-monitoring", action="store_true", help="log every address change netlink reports")
    a("-b", "--bfd_pid", metavar="FILE", help="BFD child pid file")
    a("-x", "--snmp", action="store_true", help="enable the SNMP subsystem")
    a("-A", "--snmp-agent-socket", metavar="FILE", help="the SNMP master agent's socket")
    a("-m", "--core-dump", action="store_true", help="allow a core dump if the daemon ends abnormally")
    a("-M", "--core-dump-pattern", action="store_true",
      help="-M[PATTERN]: as -m, and set kernel.core_pattern to PATTERN (default 'core')")
    a("-e", "--all-config", action="store_true", help="error if any configuration file is missing (includet)")
    a("--signum", metavar="SIGFUNC", help="print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON")
    a(CONFIG_TEST_LOG, metavar="FILE", help=argparse.SUPPRESS)
    a(CORE_PATTERN, metavar="PATTERN", help=argparse.SUPPRESS)


def parse_umask(text: str) -> int | None:
    """`-u`'s value as keepalived reads it (strtoll base 0, permission bits only); None if invalid."""
    body = text.strip()
    try:
        if body.lower().startswith(("0x", "-0x", "+0x")):
            value = int(body, 16)
        elif len(body.lstrip("+-")) > 1 and body.lstrip("+-").startswith("0"):
            value = int(body, 8)
        else:
            value = int(body, 10)
    except ValueError:
        return None
    return value if 0 <= value <= 0o777 else None


def version_text(own_version: str) -> str:
    """What `-v` prints on stderr: keepalived's first line, with the version it is compatible with.

    Tools read `keepalived -v 2>&1 | head -1` with a pattern such as
    `Keepalived v(\\d+\\.\\d+\\.\\d+) ` to decide which signals and files to use.
    """
    return (f"Keepalived v{KEEPALIVED_COMPAT_VERSION} (pykeepalived {own_version})\n\n"
            f"pykeepalived {own_version}: keepalived {KEEPALIVED_COMPAT_VERSION}'s configuration, flags and "
            "files, in Python.\n")


def not_done(args: argparse.Namespace) -> list[str]:
    """One line for each flag given whose subsystem pykeepalived does not have (the daemon logs them)."""
    notes = []
    if (args.snmp or args.snmp_agent_socket) and (args.vrrp or args.check):
        notes.append("-x/-A (SNMP): the AgentX subagent runs in the parent; with -P or -C none is started")
    if args.bfd_pid:
        notes.append("-b (BFD pid file): pykeepalived's BFD child writes no pid file; the file is not written")
    if args.address_monitoring:
        notes.append("-a (address monitoring): address additions and deletions are not logged")
    if args.release_vips:
        notes.append("-X (release VIPs on a transition from a signal): not done; VIPs follow the state machine")
    if args.core_dump_pattern:
        notes.append("-M (core pattern): kernel.core_pattern is left as it is; core dumps are allowed as with -m")
    if args.all_config:
        notes.append("-e (all configuration files required): plain include lines still skip missing files")
    return notes
