"""The names the state document (docs/state.md) and the runtime API give virtual and real servers.

An operator types what `pykeepalived ctl state` or the page shows: "TCP
203.0.113.10:80" for a virtual server, "10.11.12.2:80" for a real server.
Those are the keys of `RuntimeOverrides`. The checker's own names
(keepalived's "[203.0.113.10]:tcp:80") are accepted too, so that a name
copied from the log or from `pykeepalived status` works: `same_name` tells
whether a name is one of a server's spellings. The `*_runtime` functions
give the state document's `runtime` objects for the views. Pure.
"""

from __future__ import annotations

import ipaddress

from ..config.model import RealServer, VirtualServer
from .runtime import RuntimeOverrides


def host_port(address: object, port: int | None) -> str:
    """`10.11.12.2:80`, `[2001:db8::2]:80`; a real server without a port (fwmark) is its address alone."""
    text = str(address)
    if port is None:
        return text
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def service_label(kind: str, fwmark: int | None, group: str | None, protocol: str | None, address: object,
                  port: int | None) -> str:
    """`TCP 203.0.113.10:80`, `FWM 80`, `GRP web:80`: the state document's name of a virtual server.

    One spelling for the config's virtual servers (the runtime API) and the
    data plane's table (check/state_view.py), so that an override is found.
    """
    if kind == "fwmark":
        return f"FWM {fwmark}"
    if kind == "group":
        return f"GRP {group}:{port or 0}"
    return f"{(protocol or 'TCP').upper()} {host_port(address if address is not None else '?', port or 0)}"


def virtual_server_name(vs: VirtualServer) -> str:
    return service_label(vs.kind, vs.fwmark, vs.group, vs.protocol, vs.address, vs.port)


def real_server_name(rs: RealServer) -> str:
    """A real server without a port (under a fwmark) is `ADDRESS:0`, as the state document names it."""
    return host_port(rs.address, rs.port or 0)


def _canonical(name: str) -> str:
    """Case and address spelling do not matter: `tcp 2001:DB8::0002` is `TCP 2001:db8::2`."""
    return " ".join(_address_word(word) for word in name.strip().lower().split())


def _address_word(word: str) -> str:
    host, sep, port = word.rpartition(":")
    if sep and port.isdigit():
        try:
            return host_port(ipaddress.ip_address(host.strip("[]")), int(port))
        except ValueError:
            pass
    try:
        return str(ipaddress.ip_address(word.strip("[]")))
    except ValueError:
        return word


def same_name(asked: str, *spellings: str) -> bool:
    """Whether the name an operator gave is one of a server's spellings."""
    want = _canonical(asked)
    return any(want == _canonical(s) for s in spellings)


def real_server_runtime(runtime: RuntimeOverrides, vs_name: str, rs_name: str) -> dict[str, object]:
    """A real server's `runtime` object in the state document: {"drained": bool, "weight": int | None}."""
    key = (vs_name, rs_name)
    return {"drained": key in runtime.drained, "weight": runtime.weights.get(key)}


def virtual_server_runtime(runtime: RuntimeOverrides, vs_name: str) -> dict[str, object]:
    """A virtual server's `runtime` object: {"out": bool}."""
    return {"out": vs_name in runtime.out}


def instance_runtime(runtime: RuntimeOverrides, name: str) -> dict[str, object]:
    """A VRRP instance's `runtime` object: {"maintenance": bool}."""
    return {"maintenance": name in runtime.maintenance}
