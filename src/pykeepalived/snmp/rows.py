"""Small helpers the MIB modules share: typed values from the state document's plain JSON.

SMI types map onto AgentX value types as net-snmp encodes them: Integer32,
enumerations and TruthValue are INTEGER; Unsigned32 and InetPortNumber are
Gauge32; DisplayString and InetAddress are OCTET STRING.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .agentx import Oid, ValueType, VarBind

INT32_MAX = (1 << 31) - 1
U32_MAX = (1 << 32) - 1


@dataclass(frozen=True)
class InterfaceFacts:
    """What the MIBs need of an interface and the state document does not say; the shell looks them up."""

    index: int
    mac: bytes = b""
    ipv4: bytes | None = None  # the primary address, packed
    ipv6: bytes | None = None


Interfaces = Mapping[str, InterfaceFacts]


def integer(name: Oid, value: Any) -> VarBind | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return VarBind(ValueType.INTEGER, name, max(-INT32_MAX - 1, min(INT32_MAX, int(value))))


def gauge(name: Oid, value: Any) -> VarBind | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return VarBind(ValueType.GAUGE32, name, max(0, min(U32_MAX, int(value))))


def counter32(name: Oid, value: Any) -> VarBind | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return VarBind(ValueType.COUNTER32, name, value & U32_MAX)


def counter64(name: Oid, value: Any) -> VarBind | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return VarBind(ValueType.COUNTER64, name, value & ((1 << 64) - 1))


def ticks(name: Oid, value: Any) -> VarBind | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return VarBind(ValueType.TIME_TICKS, name, max(0, min(U32_MAX, int(value))))


def text(name: Oid, value: Any) -> VarBind | None:
    if not isinstance(value, str):
        return None
    return VarBind(ValueType.OCTET_STRING, name, value.encode("utf-8", "replace"))


def octets(name: Oid, value: bytes | None) -> VarBind | None:
    return None if value is None else VarBind(ValueType.OCTET_STRING, name, value)


def truth(name: Oid, value: Any) -> VarBind | None:
    """TruthValue: true(1), false(2)."""
    if not isinstance(value, bool):
        return None
    return VarBind(ValueType.INTEGER, name, 1 if value else 2)


def address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from "192.0.2.10", "192.0.2.10/24" or "192.0.2.10/24 dev eth1"; None if it is none."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ipaddress.ip_interface(value.split()[0]).ip
    except ValueError:
        return None


def prefix_length(value: Any) -> int | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ipaddress.ip_interface(value.split()[0]).network.prefixlen
    except ValueError:
        return None


def address_type(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """InetAddressType: ipv4(1), ipv6(2)."""
    return 1 if addr.version == 4 else 2


def dicts(value: Any) -> list[dict[str, Any]]:
    """The dicts of a list from the document, tolerating a missing or malformed part."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def part(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def keep(*rows: VarBind | None) -> list[VarBind]:
    return [row for row in rows if row is not None]
