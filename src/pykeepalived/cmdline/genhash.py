"""keepalived's genhash command line: `genhash -s SERVER -p PORT -u URL [-S] [-I] [-V VHOST] [-m MARK] [-P PROTO]
[-t SECS] [-v] [-h]`, also reached as `pykeepalived -T ...` (keepalived -T) and `pykeepalived genhash -s ...`.

The digest is printed alone on stdout, as genhash does, so that scripts can
paste it into a `url { digest ... }` block. `-v` adds genhash's dumps (the
header in hex and text, the body in hex, the digest's bytes) and the response
time. Differences from keepalived 2.2.7, each on purpose: a page that cannot
be fetched prints "Connection failed" as genhash does but exits 1 where
genhash exits 0, so that a script cannot take the message for a digest; and
without `-t` the wait is bounded at 5 seconds (genhash waits as long as the
server takes).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from collections.abc import Sequence

from .help_format import HelpFormatter

EXIT_OK = 0
EXIT_FAILED = 1
DEFAULT_TIMEOUT_S = 5.0
PROTOCOLS = {"1.0": "1.0", "1.0c": "1.0C", "1.0C": "1.0C", "1.1": "1.1"}

USAGE = """Usage: {prog} COMMAND [OPTIONS]
Commands:
   -s server-address -p port -u url
   -S -s server-address -p port -u url
   -h

Options:
   --use-ssl         -S       Use SSL (TLS) to the server.
   --use-sni         -I       Send the server name (the -V virtualhost) in the TLS handshake.
   --server          -s       The server's IP address.
   --port            -p       The server's port.
   --url             -u       The path to fetch.
   --use-virtualhost -V       The Host header to send.
   --verbose         -v       Also dump the header, the body and the digest, and the response time.
   --help            -h       This help.
   --fwmark          -m       Mark the connection's packets with this firewall mark.
   --protocol        -P       HTTP protocol: '1.0', '1.0c' (1.0 with 'Connection: close') or '1.1'.
   --timeout         -t       Timeout in seconds (default 5).
"""


class _Refused(Exception):
    """A command line genhash refuses; the text says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def _parser() -> _Parser:
    p = _Parser(add_help=False, allow_abbrev=True, formatter_class=HelpFormatter)
    a = p.add_argument
    a("-h", "--help", action="store_true")
    a("-v", "--verbose", action="store_true")
    a("-S", "--use-ssl", action="store_true")
    a("-I", "--use-sni", action="store_true")
    a("-s", "--server")
    a("-p", "--port")
    a("-u", "--url")
    a("-V", "--use-virtualhost")
    a("-m", "--fwmark")
    a("-P", "--protocol")
    a("-t", "--timeout")
    return p


def _number(text: str, what: str, low: int, high: int) -> int:
    body = text.strip(" \t")
    if not body.isdigit() or not low <= int(body) <= high:
        raise _Refused(f"invalid {what} '{text}'")
    return int(body)


def hexdump(data: bytes) -> str:
    """genhash's dump: decimal offset, two groups of eight bytes in hex, the printable characters."""
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset:offset + 16]
        cells = [f"{b:02x} " for b in row] + ["   "] * (16 - len(row))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        lines.append(f"{offset:04d}  {''.join(cells[:8])}- {''.join(cells[8:])}  {text:<16}")
    return "\n".join(lines)


_BANNERS = {  # keepalived's own, spaces included
    "HTTP Header Buffer": "[    HTTP Header Buffer    ]",
    "HTTP Header Ascii Buffer": "[ HTTP Header Ascii Buffer ]",
    "HTML Buffer": "[        HTML Buffer        ]",
    "HTML hash resulting": "[    HTML hash resulting    ]",
    "HTML hash final resulting": "[ HTML hash final resulting ]",
}


def _banner(title: str) -> str:
    return f"-----------------------{_BANNERS[title]}-----------------------"


def genhash_main(argv: Sequence[str], prog: str = "genhash") -> int:
    """Run genhash with keepalived's flags; returns the exit status."""
    from ..check.genhash import GenhashError, fetch

    try:
        args = _parser().parse_args(list(argv))
        if args.help or not (args.server and args.port and args.url):
            raise _Refused("" if args.help else "-s, -p and -u are required")
        try:
            server = str(ipaddress.ip_address(args.server))
        except ValueError:
            raise _Refused(f"server should be an IP, not {args.server}") from None
        port = _number(args.port, "port number", 1, 65535)
        fwmark = _number(args.fwmark, "fwmark", 0, 2**32 - 1) if args.fwmark is not None else None
        timeout = float(_number(args.timeout, "timeout", 0, 2**32 - 1)) if args.timeout is not None else None
        if args.protocol is not None and args.protocol not in PROTOCOLS:
            raise _Refused(f"invalid HTTP protocol version '{args.protocol}'")
    except _Refused as exc:
        if str(exc):
            print(str(exc), file=sys.stderr)
        print(USAGE.format(prog=prog), file=sys.stderr, end="")
        return EXIT_FAILED
    from ..check.http_response import host_header

    shown = f"[{server}]" if ":" in server else server
    url = f"{'https' if args.use_ssl else 'http'}://{shown}:{port}{args.url}"
    started = time.monotonic()
    try:
        got = fetch(url, host=host_header(args.use_virtualhost, server, port), virtualhost=args.use_virtualhost,
                    sni=bool(args.use_sni and args.use_virtualhost), fwmark=fwmark,
                    timeout_s=DEFAULT_TIMEOUT_S if timeout is None else (timeout or None),
                    http_protocol=PROTOCOLS[args.protocol or "1.0"])
    except GenhashError as exc:
        print("Connection failed")
        print(f"genhash: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.verbose:
        print(_banner("HTTP Header Buffer"))
        print(hexdump(got.head))
        print(_banner("HTTP Header Ascii Buffer"))
        print(got.head.decode("latin-1"))
        if got.body:
            print(_banner("HTML Buffer"))
            print(hexdump(got.body))
        print()
        print(_banner("HTML hash resulting"))
        print(hexdump(bytes.fromhex(got.digest)))
        print(_banner("HTML hash final resulting"))
    print(got.digest)
    if args.verbose:
        elapsed_us = int((time.monotonic() - started) * 1e6)
        print(f"\nGlobal response time for [{args.url}] = {elapsed_us} usecs")
    return EXIT_OK
