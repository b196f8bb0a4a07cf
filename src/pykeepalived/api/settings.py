"""The HTTP API's settings: where it listens, its token, TLS, and whether the runtime API is on.

They come from global_defs (`pykeepalived_api`, `pykeepalived_api_token_file`,
`pykeepalived_api_tls_cert`/`_key`, `pykeepalived_api_runtime`) and from the
command line (`--api`, `--api-token-file`, `--api-tls-cert`/`--api-tls-key`,
`--api-runtime`); a flag wins over its keyword, as `--dataplane` does. This
module imports no HTTP library: the CLI resolves and checks the settings before
the daemon forks, so that a TCP API without a token is refused at start.

The settings are read once, when the daemon starts; a reload that changes them
is logged as taking effect at the next restart (daemon/reload_plan.py).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..config.api_words import parse_listen as config_parse_listen
from ..config.errors import ValueProblem
from ..errors import PyKeepalivedError

TOKEN_MAX_BYTES = 4096


class ApiListenError(PyKeepalivedError):
    """An --api address that cannot be used: not unix:PATH or HOST:PORT, or the bind failed."""


class ApiSettingsError(PyKeepalivedError):
    """API settings that cannot work together (TCP without a token, a TLS cert without its key, ...)."""


def parse_listen(spec: str) -> tuple[str, str, int]:
    """unix:PATH -> ("unix", PATH, 0); HOST:PORT or [V6]:PORT -> ("tcp", HOST, PORT); else ApiListenError."""
    try:
        return config_parse_listen(spec)
    except ValueProblem as problem:
        raise ApiListenError(str(problem)) from None


@dataclass(frozen=True)
class ApiSettings:
    """What the API server needs, resolved from flags and global_defs (api/server.py, api/runtime_routes.py)."""

    listen: tuple[str, ...] = ()
    token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    runtime: bool = False  # the runtime API (drain, weight, maintenance): off unless enabled; 403 when off
    where: str = "--api"  # where `listen` came from, for messages ("--api" or "FILE:LINE")

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def has_tcp(self) -> bool:
        return any(parse_listen(spec)[0] == "tcp" for spec in self.listen)


def resolve(flag_listen: Sequence[str], flag_token_file: str | None, flag_tls_cert: str | None,
            flag_tls_key: str | None, flag_runtime: bool, config_listen: Sequence[str] = (),
            config_token_file: str | None = None, config_tls_cert: str | None = None,
            config_tls_key: str | None = None, config_runtime: bool = False,
            config_where: str = "global_defs pykeepalived_api") -> ApiSettings:
    """The settings in force: each flag wins over its keyword; raises ApiSettingsError if they cannot work."""
    listen = tuple(flag_listen) if flag_listen else tuple(config_listen)
    settings = ApiSettings(
        listen=listen,
        token_file=flag_token_file or config_token_file,
        tls_cert=flag_tls_cert or config_tls_cert,
        tls_key=flag_tls_key or config_tls_key,
        runtime=flag_runtime or config_runtime,
        where="--api" if flag_listen else config_where,
    )
    check(settings)
    return settings


def check(settings: ApiSettings) -> None:
    """Refuse what would start an open or broken API: every address parses, TCP has a readable token."""
    for spec in settings.listen:
        try:
            parse_listen(spec)
        except ApiListenError as exc:
            raise ApiSettingsError(f"{settings.where}: {exc}") from None
    if not settings.enabled:
        return
    if settings.has_tcp and settings.token_file is None:
        raise ApiSettingsError(f"{settings.where}: an API on TCP must be authenticated: give a bearer token file "
                               f"(global_defs pykeepalived_api_token_file or --api-token-file)")
    if settings.token_file is not None:
        read_token(settings.token_file)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ApiSettingsError("API TLS needs both a certificate and its key (pykeepalived_api_tls_cert and "
                               "pykeepalived_api_tls_key, or --api-tls-cert and --api-tls-key)")
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not os.access(path, os.R_OK):
            raise ApiSettingsError(f"API TLS file {path}: cannot be read")


def read_token(path: str) -> bytes:
    """The bearer token: the file's first line, stripped; an unreadable, empty or huge file is an error."""
    try:
        with open(path, "rb") as f:
            data = f.read(TOKEN_MAX_BYTES + 1)
    except OSError as exc:
        raise ApiSettingsError(f"API token file {path}: {exc.strerror or exc}") from None
    if len(data) > TOKEN_MAX_BYTES:
        raise ApiSettingsError(f"API token file {path}: longer than {TOKEN_MAX_BYTES} bytes")
    token = data.split(b"\n", 1)[0].strip()
    if len(token) < 16:
        raise ApiSettingsError(f"API token file {path}: the token (first line) must be at least 16 characters")
    return token


def token_matches(header: str | None, token: bytes) -> bool:
    """`Authorization: Bearer TOKEN` against the token, in constant time whatever the header holds."""
    if header is None:
        return False
    scheme, _, given = header.strip().partition(" ")
    ok_scheme = scheme.lower() == "bearer"
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token) and ok_scheme
