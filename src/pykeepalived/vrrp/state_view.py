"""The VRRP child's part of the state model (docs/state.md "vrrp"), from its machines and settings.

The parent, `pykeepalived status`, the HTTP API, /metrics, the SNMP subagent
and the page all read this one shape, so the names here are the contract.
The shell hands in what it holds (settings, machine views, group states,
the runtime overrides, the wall clock); nothing here reads a clock or the
kernel. `TransitionLog` keeps the last transitions of each instance with the
core's reason (StateChanged.reason), which no dump of keepalived's has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from .machine import MachineView, State, StateChanged
from .settings import InstanceSettings

MAX_TRANSITIONS = 20  # per instance: enough for an incident's story, small enough to send every second

# our counters (vrrp/machine.py Stats) under the state document's names; the keys of docs/state.md
COUNTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("adverts_rx", ("advert_rcvd",)),
    ("adverts_tx", ("advert_sent",)),
    ("became_master", ("become_master",)),
    ("released_master", ("release_master",)),
    ("priority_zero_rx", ("pri_zero_rcvd",)),
    ("priority_zero_tx", ("pri_zero_sent",)),
    ("auth_errors", ("invalid_authtype", "authtype_mismatch", "auth_failure")),
    ("invalid_ttl", ("ip_ttl_err",)),
    ("invalid_type", ("invalid_type_rcvd",)),
    ("address_list_errors", ("addr_list_err",)),
    ("packet_length_errors", ("packet_len_err",)),
    ("advert_interval_errors", ("advert_interval_err",)),
    ("checksum_errors", ("chksum_err",)),
    ("vrid_errors", ("vrid_err",)),
    # the three parts of auth_errors, as VRRP-MIB and KEEPALIVED-MIB count them apart
    ("invalid_auth_type", ("invalid_authtype",)),
    ("auth_type_mismatch", ("authtype_mismatch",)),
    ("auth_failures", ("auth_failure",)),
    ("ip_header_errors", ("ip_header_err",)),
    ("version_errors", ("version_err", "version_mismatch")),
    ("unicast_source_errors", ("unicast_src_err",)),
)

STATE_WORDS: dict[State, str] = {State.INIT: "INIT", State.BACKUP: "BACKUP", State.MASTER: "MASTER",
                                 State.FAULT: "FAULT", State.STOP: "STOP"}


def state_word(state: State) -> str:
    return STATE_WORDS.get(state, state.name)


def counters(stats: Mapping[str, int]) -> dict[str, int]:
    """The machine's counters under the state document's names (sums where it joins several)."""
    return {name: sum(int(stats.get(k, 0)) for k in keys) for name, keys in COUNTERS}


class TransitionLog:
    """The last MAX_TRANSITIONS state changes of each instance, with their reasons; `version` moves on each."""

    def __init__(self) -> None:
        self.version = 0
        self._log: dict[str, deque[dict[str, Any]]] = {}
        self._since: dict[str, float] = {}

    def record(self, change: StateChanged, at: float) -> None:
        """One StateChanged of the core, at wall-clock time `at`."""
        entries = self._log.setdefault(change.instance, deque(maxlen=MAX_TRANSITIONS))
        entries.append({"at": at, "from": state_word(change.old), "to": state_word(change.new),
                        "reason": change.reason})
        self._since[change.instance] = at
        self.version += 1

    def forget(self, name: str) -> None:
        """An instance a reload removed."""
        self._log.pop(name, None)
        self._since.pop(name, None)
        self.version += 1

    def of(self, name: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self._log.get(name, ())]

    def since(self, name: str, default: float) -> float:
        """When the instance entered its current state (`default`, e.g. the start, if it never changed)."""
        return self._since.get(name, default)


def _address(vip: object) -> str:
    address = getattr(vip, "address", vip)
    return str(address)


def instance_state(s: InstanceSettings, m: MachineView, *, since: float,
                   transitions: list[dict[str, Any]], maintenance: bool,
                   sync_group: str | None = None) -> dict[str, Any]:
    """One entry of "vrrp.instances"."""
    wanted = State.MASTER if m.wants_master or m.state is State.MASTER else (
        m.state if m.state is not State.INIT else State.BACKUP)
    return {
        "name": s.name, "interface": s.interface, "vrid": s.vrid, "family": "inet6" if s.family == 6 else "inet",
        "version": s.version, "state": state_word(m.state), "wanted_state": state_word(wanted),
        "priority": s.base_priority, "effective_priority": m.effective_priority,
        "master_address": str(m.master_address) if m.master_address is not None else None,
        "advert_int_ms": s.advert_int_cs * 10, "preempt": not s.nopreempt,
        "sync_group": s.sync_group or sync_group,
        "vips": [_address(v) for v in s.vips], "excluded_vips": [_address(v) for v in s.excluded_vips],
        "faults": sorted(m.faults),
        "since": since,
        "counters": counters(m.counters),
        "transitions": transitions,
        "runtime": {"maintenance": maintenance},
    }


def vrrp_part(settings: Mapping[str, InstanceSettings], machines: Mapping[str, MachineView],
              groups: Iterable[tuple[str, State, tuple[str, ...]]], log: TransitionLog, *,
              maintenance: Iterable[str], started_at: float, now: float) -> dict[str, Any]:
    """The whole "vrrp" part: every instance the machines run, in their order, and the sync groups.

    `groups` is (name, state, members) per vrrp_sync_group; `maintenance` the
    instances the runtime API holds in BACKUP; `started_at` stands for "since"
    of an instance that has not changed state yet.
    """
    held = set(maintenance)
    group_list = list(groups)
    group_of = {member: name for name, _, members in group_list for member in members}
    instances = [instance_state(settings[name], m, since=log.since(name, started_at), transitions=log.of(name),
                                maintenance=name in held, sync_group=group_of.get(name))
                 for name, m in machines.items() if name in settings]
    return {
        "updated_at": now,
        "instances": instances,
        "sync_groups": [{"name": name, "state": state_word(state), "instances": list(members)}
                        for name, state, members in group_list],
    }


def fingerprint(settings: Mapping[str, InstanceSettings], machines: Mapping[str, MachineView],
                log: TransitionLog, maintenance: Iterable[str]) -> tuple[object, ...]:
    """What must reach the parent at once when it moves (counters are not in it: they go at most once a second)."""
    return (log.version, tuple(sorted(maintenance)), tuple(id(s) for s in settings.values()),
            tuple((name, m.state, m.effective_priority, m.master_address, m.wants_master, len(m.faults))
                  for name, m in machines.items()))
