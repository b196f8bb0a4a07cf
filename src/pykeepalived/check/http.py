"""HTTP_GET and SSL_GET: GET every url in turn, each on its own connection, and judge the answers.

One attempt walks the urls in order and fails at the first url that fails,
as keepalived does (check_http.c; its scheduler then retries that url, which
is the caller's business). What an answer must look like lives in the sans-IO
http_response module; this module only moves bytes, within keepalived's
timers:

* connecting - and, for SSL_GET, the TLS handshake with it - within
  connect_timeout (keepalived's handshake runs on the connect timer);
* sending the request within connect_timeout;
* the first bytes of the answer within connect_timeout, and the rest of it
  within another connect_timeout. keepalived re-arms its timer on each read for
  HTTP and gives all reads after the first one timer for SSL; we apply the
  SSL rule to both, so that a server trickling bytes cannot hold an attempt
  open for ever. An answer larger than MAX_RESPONSE_BYTES fails.

TLS follows keepalived's global `SSL { }` block, with one deliberate
difference: keepalived loads `ca` but never turns peer verification on, so it
accepts any certificate; we verify the chain against `ca` when one is given
(VERIFY_WITH_CA). Without `ca` nothing is verified, as in keepalived. Host
names are never checked (keepalived connects by address).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.model import HttpCheck, SslContext, UrlSpec
from ..host import openssl_guard
from .connect import ConnectFailed, close_writer, connect_socket, open_stream
from .http_response import InvalidRule, UrlRule, host_header, judge, pick_virtualhost, request_bytes, url_rule
from .probe import OK, ProbeResult, Target, failed
from .context import ProbeContext
from .sockio import SocketTimeout, recv_to_eof, send_all

if TYPE_CHECKING:  # imported by the SSL_GET code only: a checker without TLS never loads OpenSSL (openssl_guard)
    import ssl

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024
# Set False to behave exactly like keepalived 2.2.7, which loads `ca` without verifying the server with it.
VERIFY_WITH_CA = True


class TlsSetupError(Exception):
    """The `SSL { }` block's files cannot be loaded; the message names the file."""


class _UrlFailed(Exception):
    """One url's fetch went wrong; the message is the reason for the result."""


@dataclass(frozen=True, slots=True)
class UrlPlan:
    """One url, ready to send: its rule, its request bytes, the SNI name and how log lines name it."""

    rule: UrlRule
    request: bytes
    where: str
    server_name: str | None = None


@dataclass(slots=True)
class HttpProbe:
    """One attempt of an HTTP_GET / SSL_GET checker: every url in order; `tls` is None for HTTP_GET."""

    target: Target
    urls: tuple[UrlPlan, ...]
    tls: ssl.SSLContext | None = None
    tls_compliant: bool = False
    kind: str = "HTTP_GET"
    setup_error: str | None = None

    @property
    def steps(self) -> int:
        """How many attempts one round takes: keepalived's checker fetches one url per attempt."""
        return max(1, len(self.urls))

    async def run(self) -> ProbeResult:
        """Every url in order (`pykeepalived probe`); the checker service uses `run_step`."""
        for step in range(self.steps):
            result = await self.run_step(step)
            if not result.ok:
                return result
        return OK

    async def run_step(self, step: int) -> ProbeResult:
        """Fetch and judge the url at `step` (an index into the configured urls)."""
        if self.setup_error is not None:
            return failed(self.setup_error)
        if not self.urls:
            return OK
        url = self.urls[step % len(self.urls)]
        try:
            reason = judge(url.rule, await self._fetch(url), url.where)
        except _UrlFailed as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a probe never raises; say what broke instead
            reason = f"{self.kind} error on {url.where}: {type(exc).__name__}: {exc}"
        return failed(reason) if reason is not None else OK

    async def _fetch(self, url: UrlPlan) -> bytes:
        """The whole answer to one url's request, or _UrlFailed."""
        if self.tls is None:
            return await self._fetch_plain(url)
        reader, writer = await self._open(url)
        clean = False
        try:
            writer.write(url.request)
            try:
                async with asyncio.timeout(self.target.connect_timeout_s):
                    await writer.drain()
            except TimeoutError:
                raise _UrlFailed(f"timeout sending the request to {url.where}") from None
            except OSError as exc:
                raise _UrlFailed(f"cannot send the request to {url.where}: {exc}") from None
            raw = await self._read(reader, url)
            clean = True
            return raw
        finally:
            await self._close(writer, clean)

    async def _fetch_plain(self, url: UrlPlan) -> bytes:
        """HTTP without TLS on the bare socket (see sockio.py): same timeouts and reasons as the stream path."""
        timeout_s = self.target.connect_timeout_s
        try:
            sock = await connect_socket(self.target)
        except ConnectFailed as exc:
            raise _UrlFailed(f"cannot connect to {url.where}: {exc}") from None
        try:
            try:
                await send_all(sock, url.request, timeout_s)
            except SocketTimeout:
                raise _UrlFailed(f"timeout sending the request to {url.where}") from None
            except OSError as exc:
                raise _UrlFailed(f"cannot send the request to {url.where}: {exc}") from None
            try:
                raw = await recv_to_eof(sock, timeout_s, timeout_s, MAX_RESPONSE_BYTES)
            except SocketTimeout:
                raise _UrlFailed(f"timeout reading the answer from {url.where}") from None
            except OSError as exc:
                raise _UrlFailed(f"read error from {url.where}: {exc}") from None
            if len(raw) > MAX_RESPONSE_BYTES:
                raise _UrlFailed(f"answer from {url.where} is larger than {MAX_RESPONSE_BYTES >> 20} MiB")
            return raw
        finally:
            sock.close()

    async def _open(self, url: UrlPlan) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        timeout_s = self.target.connect_timeout_s
        try:
            if self.tls is None:
                return await open_stream(self.target)
            async with asyncio.timeout(timeout_s):
                # asyncio wants a name with TLS over a given socket; "" means none: no SNI.
                return await open_stream(self.target, self.tls, url.server_name or "")
        except TimeoutError:
            raise _UrlFailed(f"timeout connecting to {url.where} (TLS handshake included)") from None
        except ConnectFailed as exc:
            raise _UrlFailed(f"cannot connect to {url.where}: {exc}") from None

    async def _read(self, reader: asyncio.StreamReader, url: UrlPlan) -> bytes:
        """Read to end of stream: first bytes within connect_timeout, the rest within another."""
        chunks: list[bytes] = []
        timeout_s = self.target.connect_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                first = await reader.read(READ_CHUNK)
            if first:
                chunks.append(first)
                async with asyncio.timeout(timeout_s):
                    await self._read_rest(reader, chunks, url)
        except TimeoutError:
            raise _UrlFailed(f"timeout reading the answer from {url.where}") from None
        except OSError as exc:
            # keepalived judges what an SSL stream delivered before an error; a TCP read error fails.
            if self.tls is None:
                raise _UrlFailed(f"read error from {url.where}: {exc}") from None
        return b"".join(chunks)

    @staticmethod
    async def _read_rest(reader: asyncio.StreamReader, chunks: list[bytes], url: UrlPlan) -> None:
        size = len(chunks[0])
        while data := await reader.read(READ_CHUNK):
            size += len(data)
            if size > MAX_RESPONSE_BYTES:
                raise _UrlFailed(f"answer from {url.where} is larger than {MAX_RESPONSE_BYTES >> 20} MiB")
            chunks.append(data)

    async def _close(self, writer: asyncio.StreamWriter, clean: bool) -> None:
        """Graceful close after a full answer; otherwise (or SSL without tls_compliant) just drop it.

        keepalived shuts SSL down quietly (no close_notify) unless
        tls_compliant is set; aborting the transport is the same thing, and
        never waits on a peer that has stopped answering.
        """
        if clean and (self.tls is None or self.tls_compliant):
            await close_writer(writer)
        else:
            writer.transport.abort()


# --------------------------------------------------------------------------- TLS contexts
_TLS_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}


def tls_context(conf: SslContext | None) -> ssl.SSLContext:
    """The client context for a config's `SSL { }` block, built once and shared by every SSL_GET.

    Cached by the block's values and the files' identity (inode, size,
    mtime), so that a reload with the same files reuses the context and a
    renewed certificate is picked up. TlsSetupError if a file cannot be
    loaded.
    """
    key = _cache_key(conf)
    ctx = _TLS_CONTEXTS.get(key)
    if ctx is None:
        ctx = _TLS_CONTEXTS[key] = _build_tls_context(conf)
    return ctx


def _file_id(path: str | None) -> tuple[object, ...]:
    if not path:
        return ()
    try:
        st = os.stat(path)
    except OSError:
        return (path,)
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def _cache_key(conf: SslContext | None) -> tuple[object, ...]:
    if conf is None:
        return ()
    return (_file_id(conf.ca), _file_id(conf.certificate), _file_id(conf.key), conf.password)


def _build_tls_context(conf: SslContext | None) -> ssl.SSLContext:
    openssl_guard.admit()  # a checker process starts without OpenSSL: the first TLS context lets it in
    try:
        import ssl
    except ImportError as exc:  # a Python built without OpenSSL
        raise TlsSetupError(f"Python's ssl module cannot be loaded: {exc}") from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if conf is None:
        return ctx
    if conf.key and not conf.certificate:
        raise TlsSetupError(f"key {conf.key} given without a certificate")
    if conf.certificate:
        # Never let OpenSSL prompt on a terminal for an encrypted key: no password is an empty one.
        password = conf.password if conf.password is not None else ""
        files = f"{conf.certificate} and key {conf.key}" if conf.key else conf.certificate
        try:
            ctx.load_cert_chain(conf.certificate, conf.key or None, password)
        except (ssl.SSLError, OSError) as exc:  # OpenSSL only says "PEM lib": name the files and the likely cause
            raise TlsSetupError(f"cannot load certificate {files} (missing, not PEM, or wrong password): "
                                f"{_ssl_reason(exc)}") from None
    if conf.ca:
        try:
            ctx.load_verify_locations(cafile=conf.ca)
        except (ssl.SSLError, OSError) as exc:
            raise TlsSetupError(f"cannot load CA file {conf.ca}: {_ssl_reason(exc)}") from None
        if VERIFY_WITH_CA:
            ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _ssl_reason(exc: OSError) -> str:
    return getattr(exc, "reason", None) or exc.strerror or str(exc)


# --------------------------------------------------------------------------- from the config
def where(target: Target, index: int, path: str) -> str:
    """keepalived's `[address]:tcp:port` plus which url, for reasons."""
    return f"[{target.address}]:tcp:{target.port} url({index}) {path}"


def server_name(checker: HttpCheck, url: UrlSpec, ctx: ProbeContext) -> str | None:
    """The SNI name: sni_name, else url / checker / virtual server virtualhost, only with enable_sni or sni_name.

    keepalived 2.2.7 skips the real server's virtualhost here (it does use it
    for the Host header); we follow it. sni_name (keepalived 2.4) wins and
    turns SNI on by itself.
    """
    if checker.sni_name:
        return checker.sni_name
    if not checker.enable_sni:
        return None
    return pick_virtualhost(url.virtualhost, checker.virtualhost, ctx.virtual_server.virtualhost)


def plan_url(checker: HttpCheck, target: Target, ctx: ProbeContext, index: int, url: UrlSpec) -> UrlPlan:
    """InvalidRule if the url's regex does not compile."""
    vhost = pick_virtualhost(url.virtualhost, checker.virtualhost, ctx.real_server.virtualhost,
                             ctx.virtual_server.virtualhost)
    rule = url_rule(url)
    request = request_bytes(rule.path, host_header(vhost, str(target.address), target.port or 0),
                            checker.http_protocol)
    sni = server_name(checker, url, ctx) if checker.kind == "SSL_GET" else None
    return UrlPlan(rule, request, where(target, index, rule.path), sni)


def make_probe(checker: HttpCheck, target: Target, ctx: ProbeContext) -> HttpProbe:
    """The probe; a config it cannot run (bad regex, unloadable SSL files, no port) gives a probe that always fails.

    keepalived drops urls without a path, and passes a checker that has no
    url left without checking anything; so do we.
    """
    probe = HttpProbe(target, (), kind=checker.kind, tls_compliant=checker.tls_compliant)
    if target.port is None:
        probe.setup_error = f"{checker.kind} on [{target.address}] has no port to connect to"
        return probe
    try:
        probe.urls = tuple(plan_url(checker, target, ctx, i, url)
                           for i, url in enumerate(checker.urls, start=1) if url.path is not None)
    except InvalidRule as exc:
        probe.setup_error = f"{checker.kind} on {target.describe()}: {exc}"
        return probe
    if checker.kind == "SSL_GET":
        try:
            probe.tls = tls_context(ctx.ssl)
        except TlsSetupError as exc:
            probe.setup_error = f"SSL_GET on {target.describe()}: cannot set up TLS: {exc}"
    return probe
