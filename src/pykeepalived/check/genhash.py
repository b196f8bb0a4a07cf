"""`pykeepalived genhash`: the digest to paste into an HTTP_GET / SSL_GET `url { digest ... }` block.

keepalived's checker sends an HTTP/1.0 GET with `User-Agent: KeepAliveClient`
and compares the MD5 of the response body (everything after the header) with
the configured digest; genhash fetches the page the same way and prints that
MD5, so the two always agree.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config.errors import PyKeepalivedError

USER_AGENT = "KeepAliveClient"


class GenhashError(PyKeepalivedError):
    """The page could not be fetched (with the reason)."""


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes

    @property
    def digest(self) -> str:
        return hashlib.md5(self.body).hexdigest()  # noqa: S324 - keepalived's digest is MD5


def request_bytes(path: str, host_header: str, http_protocol: str = "1.0") -> bytes:
    """The request keepalived's HTTP checker sends."""
    version = "1.1" if http_protocol == "1.1" else "1.0"
    close = "Connection: close\r\n" if http_protocol in ("1.0C", "1.1") else ""
    return (f"GET {path} HTTP/{version}\r\nUser-Agent: {USER_AGENT}\r\n{close}"
            f"Host: {host_header}\r\n\r\n").encode()


def parse_response(raw: bytes) -> Fetched:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise GenhashError("the server's answer has no end of header")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
        raise GenhashError(f"not an HTTP status line: {head[:60]!r}")
    return Fetched(int(status_line[1]), body)


def fetch(url: str, *, virtualhost: str | None = None, verify_tls: bool = False, timeout_s: float = 5.0,
          http_protocol: str = "1.0") -> Fetched:
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
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s) as raw_sock:
            sock: socket.socket = raw_sock
            if parts.scheme == "https":
                ctx = ssl.create_default_context()
                if not verify_tls:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(raw_sock, server_hostname=virtualhost or parts.hostname)
            sock.sendall(request_bytes(path, host_header, http_protocol))
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
    except (OSError, ssl.SSLError) as exc:
        raise GenhashError(f"{url}: {exc}") from exc
    return parse_response(b"".join(chunks))
