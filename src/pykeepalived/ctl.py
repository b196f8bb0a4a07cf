"""`pykeepalived ctl`: the runtime API's command-line client (docs/runtime-api.md).

    pykeepalived ctl [--api unix:PATH|URL] [--token-file F] drain VS RS | undrain VS RS | weight VS RS N
                     | out VS | in VS | maintenance INSTANCE | resume INSTANCE | state

It speaks HTTP to the daemon's API (api/runtime_routes.py) with the standard
library only (no aiohttp needed on the client side): over the unix socket
by default, or to http(s)://HOST:PORT with the bearer token read from
--token-file. Names are the state document's ("TCP 203.0.113.10:80",
"10.11.12.2:80", "RH_EXT"), as `ctl state` shows them. One line of result
or error, never a traceback, and an exit status a script can act on
(EXIT_* below).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

EXIT_OK = 0
EXIT_REFUSED = 1  # the daemon understood and said no (or answered something unexpected)
EXIT_USAGE = 2  # bad command line, or a request the API calls bad (400)
EXIT_NOT_RUNNING = 3  # nothing listens at the API address, or the child that would act is not running (503)
EXIT_UNKNOWN = 4  # no virtual server, real server or instance of that name (404)
EXIT_DENIED = 5  # not allowed: no or bad token (401), runtime API not enabled (403)
DEFAULT_API = "unix:/run/pykeepalived/api.sock"
TIMEOUT_S = 15.0
MAX_WEIGHT = 65535


class CtlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the API's default listener)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def connection(api: str, insecure: bool = False) -> http.client.HTTPConnection:
    """unix:PATH, http://HOST:PORT, https://HOST:PORT or HOST:PORT (http)."""
    if api.startswith("unix:"):
        return UnixHTTPConnection(api[5:], TIMEOUT_S)
    url = urlsplit(api if "://" in api else f"http://{api}")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CtlError(EXIT_USAGE, f"--api {api!r}: expected unix:PATH, http://HOST:PORT or https://HOST:PORT")
    try:
        port = url.port
    except ValueError:
        raise CtlError(EXIT_USAGE, f"--api {api!r}: bad port") from None
    if url.scheme == "https":
        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(url.hostname, port, timeout=TIMEOUT_S, context=context)
    return http.client.HTTPConnection(url.hostname, port, timeout=TIMEOUT_S)


def read_token(path: str | None) -> str | None:
    """The token as the daemon reads it (api/settings.py: the file's first line), so that both agree."""
    if path is None:
        return None
    from .api.settings import ApiSettingsError, read_token as daemon_read_token

    try:
        return daemon_read_token(path).decode("utf-8", "replace")
    except ApiSettingsError as exc:
        raise CtlError(EXIT_USAGE, str(exc)) from None


def status_exit(http_status: int) -> int:
    if 200 <= http_status < 300:
        return EXIT_OK
    return {400: EXIT_USAGE, 401: EXIT_DENIED, 403: EXIT_DENIED, 404: EXIT_UNKNOWN,
            503: EXIT_NOT_RUNNING}.get(http_status, EXIT_REFUSED)


def request(api: str, method: str, path: str, token: str | None, body: dict[str, Any] | None = None,
            insecure: bool = False) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body); CtlError when the API cannot be reached or answers no JSON."""
    conn = connection(api, insecure)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise CtlError(EXIT_NOT_RUNNING, f"the pykeepalived API is not running at {api} ({exc.strerror})") from None
    except PermissionError:
        raise CtlError(EXIT_DENIED, f"not allowed to connect to {api} (the unix socket is root's)") from None
    except (OSError, http.client.HTTPException) as exc:
        raise CtlError(EXIT_NOT_RUNNING, f"cannot talk to the pykeepalived API at {api}: {exc}") from None
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        text = raw.decode(errors="replace").strip().splitlines()
        return response.status, {"ok": False, "message": text[0] if text else f"HTTP {response.status}"}


def _weight(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= MAX_WEIGHT:
        raise argparse.ArgumentTypeError(f"{value} is out of range 0..{MAX_WEIGHT}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pykeepalived ctl", description="Change the running daemon without editing "
                                "its configuration (the runtime API; the daemon needs --api and --api-runtime).",
                                epilog="exit status: 0 done, 1 refused, 2 usage, 3 not running, 4 unknown name, "
                                       "5 not allowed")
    p.add_argument("--api", default=DEFAULT_API, metavar="unix:PATH|URL",
                   help=f"where the daemon's API listens (default {DEFAULT_API})")
    p.add_argument("--token-file", metavar="FILE", help="the bearer token (for an API on TCP)")
    p.add_argument("--insecure", action="store_true", help="https: do not check the server's certificate")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("drain", "weight 0 for a real server, its connections kept"),
                       ("undrain", "back to its configured weight")):
        c = sub.add_parser(name, help=text)
        c.add_argument("vs", metavar="VS", help='virtual server, e.g. "TCP 203.0.113.10:80"')
        c.add_argument("rs", metavar="RS", help="real server, e.g. 10.11.12.2:80")
    c = sub.add_parser("weight", help="set a real server's weight (0..65535)")
    c.add_argument("vs", metavar="VS")
    c.add_argument("rs", metavar="RS")
    c.add_argument("weight", metavar="N", type=_weight)
    for name, text in (("out", "a whole virtual server takes no new connections"), ("in", "undo out")):
        sub.add_parser(name, help=text).add_argument("vs", metavar="VS")
    for name, text in (("maintenance", "hold a VRRP instance (and its sync group) in BACKUP"),
                       ("resume", "let it act on its priority again")):
        sub.add_parser(name, help=text).add_argument("instance", metavar="INSTANCE")
    sub.add_parser("state", help="print the state document (JSON)")
    return p


def route(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    """The POST path (and body) of a changing command."""
    if args.command in ("maintenance", "resume"):
        return f"/api/v1/vrrp/instances/{quote(args.instance, safe='')}/{args.command}", None
    vs = f"/api/v1/virtual-servers/{quote(args.vs, safe='')}"
    if args.command in ("out", "in"):
        return f"{vs}/{args.command}", None
    path = f"{vs}/real-servers/{quote(args.rs, safe='')}/{args.command}"
    return path, ({"weight": args.weight} if args.command == "weight" else None)


def run(args: argparse.Namespace) -> int:
    token = read_token(args.token_file)
    if args.command == "state":
        status, body = request(args.api, "GET", "/api/v1/state", token, insecure=args.insecure)
        if status == 200:
            print(json.dumps(body, indent=1))
            return EXIT_OK
    else:
        path, payload = route(args)
        status, body = request(args.api, "POST", path, token, payload, args.insecure)
    message = body.get("message") if isinstance(body, dict) else None
    code = status_exit(status)
    if status == 404 and not message:
        message = "no such route: is this a pykeepalived API with the runtime API on?"
    if code == EXIT_OK:
        print(message or "done")
    else:
        print(f"pykeepalived ctl: {message or f'HTTP {status}'} (HTTP {status})", file=sys.stderr)
    return code


def ctl_main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        return run(args)
    except CtlError as exc:
        print(f"pykeepalived ctl: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
