"""Keep OpenSSL out of a checker process until something needs it.

asyncio imports `ssl` whenever it can, and `hashlib`/`hmac` load OpenSSL's
libcrypto through `_hashlib`: about 4.5 MiB of resident memory in every
checker process (`python -c 'import hashlib, asyncio, hmac'`: 19.6 MiB, 15.1
when they are imported without it, here), although only SSL_GET speaks TLS.
MD5 (HTTP digests), SHA-256 and BLAKE2 have builtin implementations in
CPython, which `hashlib` uses when `_hashlib` cannot be imported (same
digests); asyncio tolerates a missing `ssl` (its modules then bind `ssl =
None`).

So the checker's entry (cli.main, for `-C` without `-P` and for checker
workers) calls `keep_out()` first: it imports asyncio, hashlib and hmac while
ssl and _hashlib cannot be imported, then makes them importable again, so a
later `import ssl` (pyroute2 has one, for ha_suspend and IPVS) still works
and only then loads OpenSSL. The one place that builds a TLS context
(check/http.py, for an SSL_GET at start, at a reload or from the runtime API)
calls `admit()` first: it imports ssl and tells asyncio's modules that it
exists after all (they bound `ssl = None` at import, and `sslproto` defines
`SSLAgainErrors` only when ssl was there; CPython 3.11-3.13:
tests/unit/test_openssl_guard.py makes a TLS connection through asyncio after
`admit()`). hashlib keeps its builtin hashes.

Never used in the parent or the VRRP process, and a no-op when ssl was
already imported.
"""

from __future__ import annotations

import sys

# The modules that load OpenSSL: the TLS module and hashlib's OpenSSL backend.
OPENSSL_MODULES = ("ssl", "_ssl", "_hashlib")
# asyncio's modules that bind `ssl` at import (None when it could not be imported).
_ASYNCIO_SSL_USERS = ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto")


def keep_out() -> bool:
    """Import asyncio, hashlib and hmac without OpenSSL; True if done.

    Nothing is done (False) when ssl or _hashlib is loaded already, or when
    this Python lacks a builtin hash that hashlib would need instead of
    OpenSSL's.
    """
    if any(name in sys.modules for name in OPENSSL_MODULES):
        return False
    try:  # hashlib's builtin hashes, which the checker needs once _hashlib is kept out (digests, names)
        import _blake2  # noqa: F401
        import _md5  # type: ignore[import-not-found]  # noqa: F401
        import _sha256  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    for name in OPENSSL_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "import halted" marker
    try:  # each would load OpenSSL, and each stays loaded without it
        import asyncio  # noqa: F401
        import hashlib  # noqa: F401
        import hmac  # noqa: F401
    finally:
        for name in OPENSSL_MODULES:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return True


def asyncio_has_ssl() -> bool:
    """Whether asyncio can make TLS connections (False after keep_out() until admit())."""
    sslproto = sys.modules.get("asyncio.sslproto")
    return sslproto is None or getattr(sslproto, "ssl", None) is not None


def admit() -> None:
    """Load ssl and tell asyncio's modules that it exists. Safe to repeat; cheap once done."""
    import ssl

    for name in _ASYNCIO_SSL_USERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", None) is None:
            setattr(module, "ssl", ssl)  # noqa: B010 - another module's global, rebound
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None and not hasattr(sslproto, "SSLAgainErrors"):
        setattr(sslproto, "SSLAgainErrors", (ssl.SSLWantReadError, ssl.SSLSyscallError))  # noqa: B010
