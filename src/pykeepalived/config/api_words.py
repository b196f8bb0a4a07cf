"""The words of global_defs `pykeepalived_api` (and `--api`): unix:PATH or HOST:PORT.

Pure, so that both the parser (file:line errors at -t) and the API's settings
(api/settings.py) read an address the same way.
"""

from __future__ import annotations

from .errors import ValueProblem


def parse_listen(spec: str) -> tuple[str, str, int]:
    """unix:PATH -> ("unix", PATH, 0); HOST:PORT or [V6]:PORT -> ("tcp", HOST, PORT); else ValueProblem."""
    if spec.startswith("unix:"):
        if spec[5:].startswith("/") and len(spec) > 6:
            return "unix", spec[5:], 0
        raise ValueProblem(f"API address '{spec}': unix: needs an absolute path (unix:/run/pykeepalived/api.sock)")
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueProblem(f"API address '{spec}': expected unix:/PATH or HOST:PORT")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueProblem(f"API address '{spec}': write an IPv6 address in brackets, [ADDR]:PORT")
    return "tcp", host.strip("[]"), int(port)
