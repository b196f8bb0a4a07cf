#!/usr/bin/env python3
"""Write pykeepalived(8), a man page in roff, from the command's own argument parser.

The options section is the parser's (cli.build_parser): every flag with its
metavar and help text, so the page cannot drift from `pykeepalived --help`.
The rest (files, signals, systemd) is what docs/command-line.md,
docs/process.md and docs/packaging.md say, shortened. No pandoc or help2man is
needed: roff is a few escapes.

    PYTHONPATH=src python3 packaging/manpage.py > pykeepalived.8
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from pykeepalived import __version__
from pykeepalived.cli import build_parser


def roff(text: str) -> str:
    """Escape text for roff: backslashes, and a leading dot or quote that would read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def option_heading(action: argparse.Action) -> str:
    """`-f FILE, --use-file FILE` in bold flags and italic metavars."""
    words = []
    for flag in action.option_strings:
        word = f"\\fB{roff(flag)}\\fR"
        if action.nargs != 0:
            metavar = action.metavar or (action.dest.upper() if not action.choices else
                                         "{" + ",".join(str(c) for c in action.choices) + "}")
            word += f" \\fI{roff(str(metavar))}\\fR"
        words.append(word)
    return ", ".join(words)


SECTIONS = [
    ("SUBCOMMANDS", [
        ("genhash", "keepalived's genhash: the digest of a URL's page, for HTTP_GET/SSL_GET's digest "
                    "(also as \\fB-T\\fR, keepalived's spelling)."),
        ("probe -f FILE", "run every checker of the configuration once and print the verdicts."),
        ("status [--json]", "the running checker's table, like ipvsadm -Ln, with connection counts."),
        ("reload", "ask the running daemon (found by its pid file) to reload its configuration and wait "
                   "for the result; exits non-zero when the new configuration was refused."),
        ("doctor [-f FILE] [--peer-config FILE2]", "check this host (and the peer's configuration) for "
                                                   "the set-up mistakes that break a keepalived router."),
    ]),
    ("FILES", [
        ("/etc/keepalived/keepalived.conf", "the configuration, keepalived's format (keepalived.conf(5))."),
        ("/etc/default/pykeepalived", "DAEMON_ARGS, appended to the command line by the systemd unit."),
        ("/run/keepalived.pid, /run/keepalived_vrrp.pid, /run/keepalived_checkers.pid",
         "pid files of the parent and its children (keepalived's names: only one of the two daemons runs)."),
        ("/run/pykeepalived/checker.json", "the checker's state, read by \\fBpykeepalived status\\fR."),
        ("/tmp/keepalived.data, /tmp/keepalived.stats", "dumps written on SIGUSR1 and SIGUSR2 "
                                                        "($TMPDIR when it is an absolute path)."),
    ]),
    ("SIGNALS", [
        ("SIGHUP", "reload the configuration; a configuration with errors is refused and the running one "
                   "stays unchanged."),
        ("SIGTERM, SIGINT", "stop: VRRP instances hand their addresses over (priority 0), then exit."),
        ("SIGUSR1, SIGUSR2", "write the data and statistics dumps, as keepalived."),
    ]),
    ("SYSTEMD", [
        ("pykeepalived.service", "Type=notify: started once VRRP runs and the first table is applied; "
                                 "systemctl reload runs pykeepalived reload; WatchdogSec restarts a hung "
                                 "daemon. It conflicts with keepalived.service: starting one stops the other."),
    ]),
]


def page(today: datetime.date | None = None) -> str:
    parser = build_parser()
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")  # reproducible builds: the date of the source, not of today
    if today is None and epoch.isdigit():
        today = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).date()
    day = (today or datetime.date.today()).isoformat()
    out = [
        f'.TH PYKEEPALIVED 8 "{day}" "pykeepalived {__version__}" "System Manager\'s Manual"',
        ".SH NAME",
        "pykeepalived \\- keepalived's job (VRRP, health checks, LVS) in Python",
        ".SH SYNOPSIS",
        ".B pykeepalived",
        "[\\fIOPTIONS\\fR] [\\fB\\-f\\fR \\fIFILE\\fR]",
        ".br",
        ".B pykeepalived",
        "\\fIgenhash\\fR|\\fIprobe\\fR|\\fIstatus\\fR|\\fIreload\\fR|\\fIdoctor\\fR ...",
        ".SH DESCRIPTION",
        roff("pykeepalived reads keepalived.conf files and does what keepalived 2.2.7 does with them: VRRP "
             "(v2 and v3, with keepalived and FRR as peers), health checks of real servers, and the "
             "Linux Virtual Server data plane (IPVS where the kernel has it, nftables elsewhere). It takes "
             "keepalived's command-line flags with their meanings, so switching is changing the binary's "
             "name."),
        ".PP",
        roff(parser.description or ""),
        ".SH OPTIONS",
    ]
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        out += [".TP", option_heading(action), roff((action.help or "").replace("%(default)s", str(action.default)))]
    for title, items in SECTIONS:
        out.append(f".SH {title}")
        for head, text in items:
            out += [".TP", f"\\fB{roff(head)}\\fR", text if "\\f" in text else roff(text)]
    out += [
        ".SH SEE ALSO",
        "\\fBkeepalived.conf\\fR(5), \\fBkeepalived\\fR(8), \\fBsystemctl\\fR(1), "
        "/usr/share/doc/pykeepalived/",
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(page())
