"""The model as JSON: what `--dump-config` prints and what later code will act on."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
from typing import Any

from .errors import Location
from .model import KeepalivedConfig

_SKIP = {"keyword_locations"}


def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, addresses to strings, locations to "file:line"."""
    if isinstance(value, Location):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if f.name in _SKIP:
                continue
            out[f.name] = to_jsonable(getattr(value, f.name))
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address,
                          ipaddress.IPv4Interface, ipaddress.IPv6Interface,
                          ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def dump_json(config: KeepalivedConfig, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(config), indent=indent, sort_keys=False)
