"""The checker child's part of the state model (docs/state.md "checker"), from its status and table.

Inside the checker a virtual server is keepalived's `[192.0.2.10]:tcp:80` and
a real server `[10.11.12.2]:tcp:80`; the state document, the HTTP API's
paths and the runtime overrides (state/runtime.py) use the names people read:
`TCP 192.0.2.10:80`, `FWM 80`, `GRP web:80` and `10.11.12.2:80`
(`[2001:db8::2]:80` for IPv6). `vs_state_name` and `rs_state_name` are the
one translation. `HealthLog` keeps each real server's last health changes
with their reason; `Rates` turns successive connection counts into a rate.
Pure: the shell hands in CheckService.status(), the desired table, the
counts and the wall clock.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..lvs.model import DesiredTable, Destination, VirtualService
from ..state.runtime import RuntimeOverrides
from ..state.runtime_names import host_port, service_label

MAX_HISTORY = 20  # health changes kept per real server
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # the status file's encoder (check/service.py), made once

Counts = Mapping[str, Mapping[str, Sequence[int]]]  # internal VS name -> "[addr]:port" -> (active, inactive)


class TableJson:
    """`DesiredTable.to_json()` as compact JSON text, at a fraction of its cost and memory.

    `dataclasses.asdict` walks every destination with deep copies: at 6,000
    real servers the table took 0.3 s per status file, on the event loop, at
    every change (bench/checks.py). Here each service's text around its
    destinations is made by a plain field walk and kept while its table entry
    is the same object (the checker rebuilds only the entries of services
    that changed: `ServiceState.entry`); each destination is written out as
    it is handed on (`destination_text`, about 1 µs for the usual one).
    Keeping a text per destination instead held 1.1 MiB at 6,000 real
    servers for the checker's life (tracemalloc in bench/checks.py's
    checker); writing them costs about 6 ms per status file there. `texts`
    hands the table out a few hundred destinations at a time, so a status
    file never holds a service's whole text (5,000 destinations: some 0.7 MB
    as text, again as bytes).
    """

    def __init__(self, encode: Callable[[Any], str] = _COMPACT.encode) -> None:
        self._encode = encode
        # service name -> (its entry, its text up to its destinations, the rest)
        self._parts: dict[str, tuple[VirtualService, str, str]] = {}

    def __call__(self, table: DesiredTable) -> dict[str, Any]:
        """The table's JSON as Python values (tuples come back as lists): made afresh from the kept text."""
        parsed: dict[str, Any] = json.loads("".join(self.texts(table)))
        return parsed

    def texts(self, table: DesiredTable, batch: int = 256) -> Iterator[str]:
        """`{"services": [...]}` as text, in pieces of at most `batch` destinations each.

        The kept text is brought up to date before the first piece, so a
        reader that stops early leaves nothing half done.
        """
        parts: dict[str, tuple[VirtualService, str, str]] = {}
        entries = []
        for svc in table.services:
            kept = parts.get(svc.name) or self._parts.get(svc.name)
            if kept is None or kept[0] is not svc:
                kept = self._service(svc)
            parts[svc.name] = kept
            entries.append(kept)
        self._parts = parts
        return self._pieces(entries, batch)

    def _pieces(self, parts: list[tuple[VirtualService, str, str]], batch: int) -> Iterator[str]:
        yield '{"services":['
        for i, (svc, head, tail) in enumerate(parts):
            yield ("," if i else "") + head
            dests = svc.destinations
            for start in range(0, len(dests), batch):
                yield ("," if start else "") + ",".join(
                    destination_text(d, self._encode) for d in dests[start:start + batch])
            yield tail
        yield "]}"

    def _service(self, svc: VirtualService) -> tuple[VirtualService, str, str]:
        """A service's text before and after its destinations."""
        enc = self._encode
        names = _names(svc)
        cut = names.index("destinations")
        head = enc({name: _plain(getattr(svc, name)) for name in names[:cut]})[:-1]
        head += ("," if cut else "") + '"destinations":['
        rest = enc({name: _plain(getattr(svc, name)) for name in names[cut + 1:]})
        tail = "]" + ("," + rest[1:] if len(rest) > 2 else "}")
        return svc, head, tail


_PLAIN_WORD = re.compile(r"[0-9A-Za-z.:%_-]*")
"""Text that is the same inside a JSON string (IP literals, with a zone; forwarding methods)."""


def destination_text(d: Destination, encode: Callable[[Any], str] = _COMPACT.encode) -> str:
    """`encode(_plain(d))` with the compact encoder's separators, written out for the usual destination.

    One without a tunnel whose address and method need no escaping (every
    destination the checker builds from a parsed address); any other goes
    through `encode`. Fields in Destination's order (tests/unit/test_state_views.py
    compares both ways).
    """
    if d.tunnel is not None or not _PLAIN_WORD.fullmatch(d.address) or not _PLAIN_WORD.fullmatch(d.method):
        return encode(_plain(d))
    return (f'{{"address":"{d.address}","port":{_json_int(d.port)},"weight":{int(d.weight)},'
            f'"method":"{d.method}","alive":{"true" if d.alive else "false"},'
            f'"sorry":{"true" if d.sorry else "false"},"uthreshold":{_json_int(d.uthreshold)},'
            f'"lthreshold":{_json_int(d.lthreshold)},"tunnel":null}}')


def _json_int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


_FIELDS: dict[type, tuple[str, ...]] = {}


def _names(value: Any) -> tuple[str, ...]:
    names = _FIELDS.get(type(value))
    if names is None:
        names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    return names


def _plain(value: Any) -> Any:
    """What dataclasses.asdict makes of `value` (dataclasses, lists, tuples and dicts inside included)."""
    cls = type(value)
    names = _FIELDS.get(cls)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if cls is tuple or cls is list:
        return cls(_plain(v) for v in value)
    if cls is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value  # str, int, float, bool, None: what the table holds besides containers


def vs_state_name(svc: VirtualService) -> str:
    """The state document's name of a virtual server (state/runtime_names.py spells it)."""
    return service_label(svc.kind, svc.fwmark, svc.group, svc.protocol, svc.address, svc.port)


def split_internal(name: str) -> tuple[str, int]:
    """`[10.11.12.2]:tcp:80` -> ("10.11.12.2", 80): the checker's real server name taken apart."""
    if name.startswith("[") and "]" in name:
        address, rest = name[1:].split("]", 1)
    else:
        address, rest = name, ""
    port = rest.rsplit(":", 1)[-1] if rest else "0"
    return address, int(port) if port.isdigit() else 0


def rs_state_name(internal: str) -> str:
    """The state document's name of a real server, from the checker's."""
    address, port = split_internal(internal)
    return host_port(address, port)


def health_reason(checkers: Iterable[tuple[str, bool, str]], healthy: bool) -> str:
    """Why a real server is (un)healthy: the failing checkers' reasons, or that all pass.

    `checkers` is (kind, down, last_reason) per checker of the real server.
    """
    items = list(checkers)
    if healthy:
        return "all checkers succeed" if items else "no checker: always up"
    failing = [f"{kind}: {reason or 'failed'}" for kind, down, reason in items if down]
    return "; ".join(failing) or "taken out"


class HealthLog:
    """The last MAX_HISTORY health changes of each real server (by internal names); `version` moves on each."""

    def __init__(self) -> None:
        self.version = 0
        self._log: dict[tuple[str, str], deque[dict[str, Any]]] = {}

    def record(self, vs: str, rs: str, healthy: bool, reason: str, at: float) -> None:
        entries = self._log.setdefault((vs, rs), deque(maxlen=MAX_HISTORY))
        entries.append({"at": at, "healthy": healthy, "reason": reason})
        self.version += 1

    def of(self, vs: str, rs: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self._log.get((vs, rs), ())]

    def keep_only(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Forget the real servers a reload removed."""
        wanted = set(pairs)
        for key in [k for k in self._log if k not in wanted]:
            del self._log[key]


class Rates:
    """Connections per second of each virtual server, from two successive counts.

    The data planes give the connections there are now (IPVS's counters, or
    the conntrack table for nftables), not a running total of connections
    made, so the rate is the growth of that number between two readings
    divided by the time between them, never below 0: a burst of new
    connections shows, connections that come and go between two readings
    do not. A first reading has no rate (0.0).
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}
        self.rates: dict[str, float] = {}

    def update(self, totals: Mapping[str, int], at: float) -> None:
        for name, total in totals.items():
            last = self._last.get(name)
            if last is not None and at > last[0]:
                self.rates[name] = round(max(0, total - last[1]) / (at - last[0]), 3)
            elif last is None:
                self.rates[name] = 0.0
            if last is None or at > last[0]:
                self._last[name] = (at, total)
        for name in [n for n in self._last if n not in totals]:
            del self._last[name]
            self.rates.pop(name, None)


def totals(counts: Counts) -> dict[str, int]:
    """Active plus inactive connections of each virtual server (internal names)."""
    return {vs: sum(int(c[0]) + int(c[1]) for c in dests.values()) for vs, dests in counts.items()}


def table_weights(entry: VirtualService | None) -> dict[str, int]:
    """`[addr]:port` -> the weight the data plane holds, for each real server (not the sorry one) in the entry.

    The entry is the table's (CheckService.current_table), so it has the
    runtime API's overrides applied: a drained server or one of a virtual
    server taken out is at 0, a weight set at runtime is there. A real server
    missing from it (down and not inhibited, or replaced by the sorry server)
    has no weight in the data plane.
    """
    if entry is None:
        return {}
    return {d.name: d.weight if d.alive else 0 for d in entry.destinations if not d.sorry}


def checker_part(status: Mapping[str, Any], table: DesiredTable, *, quorums: Mapping[str, int],
                 history: HealthLog, runtime: RuntimeOverrides, counts: Counts | None,
                 counts_at: float | None, rates: Mapping[str, float], now: float) -> dict[str, Any]:
    """The whole "checker" part.

    `status` is CheckService.status() (services with their real servers and
    checkers); `table` the desired table (addresses, scheduler, forwarding);
    `quorums` each virtual server's quorum; `counts` the data plane's
    connection counts, None when it has none (then every "stats" is null).
    """
    view = _PartView(table, quorums, history, runtime, counts, rates)
    services = []
    for svc in status.get("services", []):
        vs = view.service(svc)
        vs["real_servers"] = [view.real_server(vs, rs) for rs in svc.get("real_servers", [])]
        view.close_service(vs)
        services.append(vs)
    return {"updated_at": now, **_part_head(status, counts_at), "virtual_servers": services,
            **_part_tail(status)}


def checker_part_pieces(status_head: Mapping[str, Any],
                        services: Iterable[tuple[Mapping[str, Any], Iterable[Mapping[str, Any]]]],
                        table: DesiredTable, *, quorums: Mapping[str, int], history: HealthLog,
                        runtime: RuntimeOverrides, counts: Counts | None, counts_at: float | None,
                        rates: Mapping[str, float], batch: int = 64) -> list[bytes]:
    """`checker_part` as compact JSON without its updated_at, in pieces, built `batch` real servers at a time.

    `status_head` is CheckService.status()'s head and `services` each virtual
    server's head with its real servers' statuses, handed out one at a time
    (CheckService.status_services). The pieces, joined, are the part's text;
    they are hashed and sent as they are (daemon/state_report.py), never
    joined. At 6,000 real servers the status and the part as dicts were 9.2
    MiB for each part the checker child sent (tracemalloc); joined text built
    from text pieces peaked at 4.3 MiB; these pieces are the part's 1.7 MiB
    and one batch of dicts.
    """
    view = _PartView(table, quorums, history, runtime, counts, rates)
    head = _part_head(status_head, counts_at)
    out = [(_COMPACT.encode(head)[:-1] + ',"virtual_servers":[').encode()]
    for i, (svc, real_servers) in enumerate(services):
        vs = view.service(svc)
        pending: list[dict[str, Any]] = []
        pieces: list[bytes] = []
        for rs in real_servers:
            pending.append(view.real_server(vs, rs))
            if len(pending) == batch:
                pieces.append((("," if pieces else "") + _COMPACT.encode(pending)[1:-1]).encode())
                pending = []
        if pending:
            pieces.append((("," if pieces else "") + _COMPACT.encode(pending)[1:-1]).encode())
        view.close_service(vs)  # the sums are known once its real servers are: the head is written last
        vs["real_servers"] = []
        out.append((("," if i else "") + _COMPACT.encode(vs)[:-2]).encode())
        out.extend(pieces)
        out.append(b"]}")
    tail = _part_tail(status_head)
    out.append(("]" + ("," + _COMPACT.encode(tail)[1:] if tail else "}")).encode())
    return out


def _part_head(status: Mapping[str, Any], counts_at: float | None) -> dict[str, Any]:
    repairs = status.get("dataplane_repairs") or {}
    return {"dataplane": status.get("dataplane"), "applied": bool(status.get("applied", True)),
            "dataplane_error": status.get("dataplane_error"),
            "dataplane_repairs": int(repairs.get("count", 0) or 0),
            "counts_at": counts_at}


def _part_tail(status: Mapping[str, Any]) -> dict[str, Any]:
    return {"bgp": status["bgp"]} if isinstance(status.get("bgp"), dict) else {}  # pykeepalived_bgp


class _PartView:
    """How one status entry becomes the part's: the one place both checker_part and checker_part_pieces use."""

    def __init__(self, table: DesiredTable, quorums: Mapping[str, int], history: HealthLog,
                 runtime: RuntimeOverrides, counts: Counts | None, rates: Mapping[str, float]) -> None:
        self.entries = {svc.name: svc for svc in table.services}
        self.quorums = quorums
        self.history = history
        self.runtime = runtime
        self.counts = counts
        self.rates = rates
        # the service being walked: its internal name, table weights and counts, and its connection sums
        self._internal = ""
        self._in_table: dict[str, int] = {}
        self._vs_counts: Mapping[str, Sequence[int]] = {}
        self._sums = [0, 0]

    def service(self, svc: Mapping[str, Any]) -> dict[str, Any]:
        """The virtual server's entry, its real_servers and stats still to come (real_server, close_service)."""
        internal = self._internal = str(svc["name"])
        entry = self.entries.get(internal)
        vs_name = vs_state_name(entry) if entry is not None else internal
        self._vs_counts = self.counts.get(internal, {}) if self.counts is not None else {}
        self._in_table = table_weights(entry)
        self._sums = [0, 0]
        return {
            "name": vs_name, "kind": entry.kind if entry is not None else "address",
            "address": entry.address if entry is not None else None,
            "port": entry.port if entry is not None else None,
            "protocol": entry.protocol if entry is not None else None,
            "fwmark": entry.fwmark if entry is not None else None,
            "group": entry.group if entry is not None else None,
            "scheduler": entry.scheduler if entry is not None else None,
            "lb_kind": entry.method if entry is not None else None,
            "persistence_timeout_s": (entry.persistence_timeout_s or 0) if entry is not None else 0,
            "quorum": self.quorums.get(internal, 1), "quorum_up": bool(svc.get("quorum_up", True)),
            "weight_sum": svc.get("weight_sum"),
            "stats": None,
            "runtime": {"out": vs_name in self.runtime.out},
            "real_servers": [],
        }

    def real_server(self, vs: Mapping[str, Any], rs: Mapping[str, Any]) -> dict[str, Any]:
        rs_internal = str(rs["name"])
        address, port = split_internal(rs_internal)  # once: rs_state_name's name and the counts' key from it
        rs_name = host_port(address, port)
        dest_key = f"[{address}]:{port}"
        stats = None
        if self.counts is not None:
            active, inactive = (list(self._vs_counts.get(dest_key, (0, 0))) + [0, 0])[:2]
            self._sums[0] += int(active)
            self._sums[1] += int(inactive)
            stats = {"active_connections": int(active), "inactive_connections": int(inactive)}
        return {
            "name": rs_name, "address": address, "port": port,
            "healthy": bool(rs["alive"]), "weight": rs["weight"],
            "effective_weight": self._in_table.get(dest_key, 0),  # the table's: runtime overrides in
            "stats": stats,
            "checkers": [{"kind": c["kind"], "verdict": c["verdict"], "attempts": c["attempts"],
                          "last_ok": c["last_ok"], "last_reason": c["last_reason"], "last_at": None,
                          "next_in_s": c.get("next_in_s")} for c in rs.get("checkers", [])],
            "history": self.history.of(self._internal, rs_internal),
            "runtime": {"drained": (vs["name"], rs_name) in self.runtime.drained,
                        "weight": self.runtime.weights.get((vs["name"], rs_name))},
        }

    def close_service(self, vs: dict[str, Any]) -> None:
        if self.counts is not None:
            vs["stats"] = {"active_connections": self._sums[0], "inactive_connections": self._sums[1],
                           "connections_per_s": float(self.rates.get(self._internal, 0.0))}
