"""The event timeline (docs/state.md "events"), derived from the parts the children send.

The children send their whole part, not events: a part that was lost (a full
pipe, a dead child) is simply replaced by the next one. The parent derives
the timeline by comparing each new part with what it has seen: a VRRP
transition or a real server's health change is new when it is later than the
latest of its kind already shown (the children keep the last ones with their
reasons), a sync group's state or a virtual server's quorum when it differs
from the previous part, the data-plane error when it appears or clears.
High-water marks outlive a child, so a respawned child's first part adds its
own start and nothing twice. Pure: parts in, events out.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


# Every key the timeline reads, at any depth of a part: the parent parses a part it keeps as text with
# `reads_only` (daemon/child_report.py), which drops the rest as it goes. At 6,000 real servers the whole
# checker part parsed is 7.7 MiB at its peak, this 1.8 MiB, and no slower (tracemalloc, a real run's part).
READS = frozenset({
    "instances", "name", "transitions", "at", "from", "to", "reason", "sync_groups", "state",  # vrrp()
    "virtual_servers", "real_servers", "history", "healthy", "quorum_up", "dataplane_error",  # checker()
})


def reads_only(pairs: list[tuple[str, Any]]) -> JsonObject:
    """A JSON object with only the keys the timeline reads (json's object_pairs_hook)."""
    return {key: value for key, value in pairs if key in READS}


def event(at: float, kind: str, subject: str, text: str, **extra: Any) -> JsonObject:
    """One entry of the timeline; `kind` is vrrp, real_server, virtual_server, reload, runtime or daemon."""
    return {"at": at, "kind": kind, "subject": subject, "text": text, **extra}


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class Timeline:
    """Remembers what has been shown; `vrrp(part)` and `checker(part)` return the events each new part adds."""

    def __init__(self) -> None:
        self._transition_seen: dict[str, float] = {}  # instance -> the latest transition shown
        self._history_seen: dict[tuple[str, str], float] = {}  # (vs, rs) -> the latest health change shown
        self._groups: dict[str, str] = {}  # sync group -> its state in the last part
        self._quorum: dict[str, bool] = {}  # virtual server -> quorum_up in the last part
        self._dataplane_error: str | None = None

    def vrrp(self, part: JsonObject, now: float) -> list[JsonObject]:
        out: list[JsonObject] = []
        for inst in part.get("instances", []):
            name = str(inst.get("name"))
            seen = self._transition_seen.get(name, float("-inf"))
            for t in inst.get("transitions", []):
                at = _num(t.get("at"))
                if at > seen:
                    reason = f" ({t['reason']})" if t.get("reason") else ""
                    out.append(event(at, "vrrp", name, f"{t.get('from')} -> {t.get('to')}{reason}"))
                    self._transition_seen[name] = at
        for group in part.get("sync_groups", []):
            name, state = str(group.get("name")), str(group.get("state"))
            old = self._groups.get(name)
            if old is not None and old != state:
                out.append(event(now, "vrrp", name, f"sync group {old} -> {state}"))
            self._groups[name] = state
        return sorted(out, key=lambda e: e["at"])

    def checker(self, part: JsonObject, now: float) -> list[JsonObject]:
        out: list[JsonObject] = []
        for vs in part.get("virtual_servers", []):
            vs_name = str(vs.get("name"))
            for rs in vs.get("real_servers", []):
                rs_name = str(rs.get("name"))
                key = (vs_name, rs_name)
                seen = self._history_seen.get(key, float("-inf"))
                for h in rs.get("history", []):
                    at = _num(h.get("at"))
                    if at > seen:
                        word = "UP" if h.get("healthy") else "DOWN"
                        reason = f" ({h['reason']})" if h.get("reason") else ""
                        out.append(event(at, "real_server", rs_name, f"{rs_name} of {vs_name} {word}{reason}",
                                         virtual_server=vs_name))
                        self._history_seen[key] = at
            up = bool(vs.get("quorum_up", True))
            old = self._quorum.get(vs_name)
            if old is not None and old != up:
                out.append(event(now, "virtual_server", vs_name,
                                 f"{vs_name} quorum {'gained' if up else 'lost'}"))
            self._quorum[vs_name] = up
        error = part.get("dataplane_error")
        error = str(error) if error else None
        if error != self._dataplane_error:
            text = f"data plane failing: {error}" if error else "data plane works again"
            out.append(event(now, "daemon", "dataplane", text))
            self._dataplane_error = error
        return sorted(out, key=lambda e: e["at"])

    def forget(self, part: str) -> None:
        """A subsystem a reload stopped: its groups and quorums start afresh if it comes back."""
        if part == "vrrp":
            self._groups.clear()
        elif part == "checker":
            self._quorum.clear()
            self._dataplane_error = None
