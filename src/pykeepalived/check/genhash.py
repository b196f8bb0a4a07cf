"""`pykeepalived genhash`: the digest to paste into an HTTP_GET / SSL_GET `url { digest ... }` block.

keepalived's checker sends an HTTP/1.0 GET with `User-Agent: KeepAliveClient`
and compares the MD5 of the response body (everything after the header) with
the configured digest; genhash fetches the page the same way and prints that
MD5, so the two always agree.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import PyKeepalivedError
from .http_response import USER_AGENT, request_bytes, split_response

__all__ = ["USER_AGENT", "Fetched", "GenhashError", "fetch", "parse_response", "request_bytes"]


class GenhashError(PyKeepalivedError):
    """The page could not be fetched (with the reason)."""


@dataclass(frozen=True)
class Fetched:
    """The page: its status, its body, and the digest the checker would compute (http_response.Response.md5)."""

    status: int
    body: bytes
    digest: str
    head: bytes = b""  # the header as received, for genhash's verbose output


def parse_response(raw: bytes) -> Fetched:
    """Split the answer exactly as the checker does, refusing what is not HTTP."""
    response = split_response(raw)
    if response is None:
        raise GenhashError("the server's answer has no end of header")
    if not response.status:
        raise GenhashError(f"not an HTTP status line: {response.head[:60]!r}")
    return Fetched(response.status, response.body, response.md5, response.head)


def fetch(url: str, *, virtualhost: str | None = None, verify_tls: bool = False, timeout_s: float | None = 5.0,
          http_protocol: str = "1.0", host: str | None = None, fwmark: int | None = None,
          sni: bool = True) -> Fetched:
    """Fetch the page as the checker would; `host` replaces the Host header, `sni` sends the server name.

    keepalived's own genhash flags (`-s -p -u -V -S -I -m -P -t`, cmdline/genhash.py) come here as a URL
    and these options; `timeout_s` None waits as long as the server takes (keepalived's default).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GenhashError(f"{url}: give a URL like http://192.0.2.10:80/health")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = virtualhost or (f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname)
    if parts.port:
        host_header += f":{port}"
    if host is not None:
        host_header = host
    try:
        with _connect(parts.hostname, port, timeout_s, fwmark) as raw_sock:
            sock: socket.socket = raw_sock
            if parts.scheme == "https":
                import ssl  # only an https page needs it (importing it costs start-up time)

                ctx = ssl.create_default_context()
                if not verify_tls:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(raw_sock, server_hostname=(virtualhost or parts.hostname) if sni else None)
            sock.sendall(request_bytes(path, host_header, http_protocol))
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
    except OSError as exc:  # ssl.SSLError is an OSError
        raise GenhashError(f"{url}: {exc}") from exc
    return parse_response(b"".join(chunks))


def _connect(address: str, port: int, timeout_s: float | None, fwmark: int | None) -> socket.socket:
    """A connected TCP socket, its packets marked with `fwmark` (SO_MARK) when one is given."""
    if fwmark is None:
        return socket.create_connection((address, port), timeout=timeout_s)
    info = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(info[0], info[1], info[2])
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, fwmark)
        sock.settimeout(timeout_s)
        sock.connect(info[4])
    except OSError:
        sock.close()
        raise
    return sock
