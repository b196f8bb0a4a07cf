"""Every VRRP instance of one process and their sync groups, as one sans-IO object.

The shell (service.py) hands every input to `VrrpCore` with the instance's
name and the time, and carries out the actions it gets back. The core runs
the instance's machine, lets the instance's sync group (group.py) move the
other members along, and adds one `TimerChanged` for every machine whose
next deadline moved, siblings included: the shell arms exactly the timers it
is told to and never looks for work on a machine's behalf. The shell reads
machines only through `MachineView` (read-only); it never writes their fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

from .group import SyncGroup
from .machine import ALONE, Action, GroupConsent, MachineView, State, StateChanged, VrrpMachine
from .packet import Advert
from .settings import InstanceSettings

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class TimerChanged:
    """Call `VrrpCore.timer(instance, at)` at `at` (None: nothing is due; cancel what was armed)."""

    instance: str
    at: float | None


CoreAction = Action | TimerChanged


class VrrpCore:
    """All machines and sync groups; one method per input, each returning the actions in order."""

    def __init__(self, settings: Iterable[InstanceSettings], groups: Mapping[str, Iterable[str]]) -> None:
        self._machines: dict[str, VrrpMachine] = {s.name: VrrpMachine(s) for s in settings}
        self._groups: dict[str, SyncGroup] = {}
        self._group_of: dict[str, SyncGroup] = {}
        for gname, names in groups.items():
            members = [self._machines[n] for n in names if n in self._machines]
            if not members:
                continue
            group = SyncGroup(gname, members)
            self._groups[gname] = group
            for m in members:
                self._group_of[m.name] = group
        self._armed: dict[str, float | None] = dict.fromkeys(self._machines)
        self.held: set[str] = set()  # runtime maintenance: kept in BACKUP whatever their priority (hold())

    # ------------------------------------------------------------------ reading
    @property
    def machines(self) -> Mapping[str, MachineView]:
        return self._machines

    def machine(self, name: str) -> MachineView:
        return self._machines[name]

    def group_state(self, name: str) -> State:
        return self._groups[name].state

    @property
    def group_names(self) -> frozenset[str]:
        return frozenset(self._groups)

    # ------------------------------------------------------------------ inputs
    def start(self, name: str, now: float) -> list[CoreAction]:
        return self._run(name, self._machines[name].start(now), now)

    def stop(self, name: str, now: float) -> list[CoreAction]:
        return self._run(name, self._machines[name].stop(now), now)

    def receive(self, name: str, advert: Advert, src: IPAddress, ttl: int | None, now: float) -> list[CoreAction]:
        return self._run(name, self._machines[name].receive(advert, src, ttl, now), now)

    def timer(self, name: str, now: float) -> list[CoreAction]:
        """The timer armed for `name` fired (it is spent, whatever the machine had due)."""
        self._armed[name] = None
        machine = self._machines[name]
        return self._run(name, machine.handle_timer(now, self._consent(machine)), now)

    def set_fault(self, name: str, reason: str, active: bool, now: float) -> list[CoreAction]:
        machine = self._machines[name]
        return self._run(name, machine.set_fault(reason, active, now, self._consent(machine)), now)

    def set_priority(self, name: str, priority: int, now: float) -> list[CoreAction]:
        return self._run(name, self._machines[name].set_priority(priority, now), now)

    def set_source(self, name: str, source: IPAddress) -> None:
        self._machines[name].set_source(source)

    def count_undecodable(self, name: str, counter: str) -> None:
        self._machines[name].count_undecodable(counter)

    # ------------------------------------------------------------------ reload (vrrp/reload_plan.py)
    def update(self, name: str, settings: InstanceSettings, now: float) -> list[CoreAction]:
        """New settings for a running machine: its state and timers stay (VrrpMachine.update_settings)."""
        return self._run(name, self._machines[name].update_settings(settings, now), now)

    def add(self, settings: InstanceSettings) -> None:
        """A new instance, in INIT until start(); regroup() puts it in its sync group."""
        if settings.name in self._machines:
            raise ValueError(f"instance {settings.name} already runs")
        self._machines[settings.name] = VrrpMachine(settings)
        self._armed[settings.name] = None

    def remove(self, name: str) -> None:
        """Forget a stopped machine (its timer is the shell's to cancel); regroup() after."""
        del self._machines[name]
        self._armed.pop(name, None)
        self.held.discard(name)
        group = self._group_of.pop(name, None)
        if group is not None:
            group.members = tuple(m for m in group.members if m.name != name)

    def regroup(self, groups: Mapping[str, Iterable[str]]) -> None:
        """Re-form the sync groups; a group with the same name and members keeps its state (no notify).

        A new or changed group takes the state its members are in, without a
        group notify: nothing changed state.
        """
        old = self._groups
        self._groups, self._group_of = {}, {}
        for gname, names in groups.items():
            members = [self._machines[n] for n in names if n in self._machines]
            if not members:
                continue
            group = old.get(gname)
            if group is None or [m.name for m in group.members] != [m.name for m in members]:
                state = group.state if group is not None else State.INIT
                group = SyncGroup(gname, members)
                group.state = state
                states = {m.state for m in members}
                if len(states) == 1 and next(iter(states)) in (State.MASTER, State.BACKUP, State.FAULT):
                    group.state = next(iter(states))
            self._groups[gname] = group
            for m in members:
                self._group_of[m.name] = group

    # ------------------------------------------------------------------ runtime maintenance (vrrp/runtime_apply.py)
    def hold(self, names: Iterable[str], now: float, reason: str) -> list[CoreAction]:
        """Keep these instances in BACKUP: each MASTER sends priority 0 (the peer takes over at once), then steps down.

        Every priority-0 advert goes before any state change, so that a sync
        group's members forced along by the first one have announced too.
        """
        names = [n for n in names if n in self._machines]
        self.held.update(names)
        for name in names:
            self._machines[name].held = True
        out: list[CoreAction] = []
        for name in names:
            out += self._run(name, self._machines[name].send_stop_advert(), now)
        for name in names:
            if self._machines[name].state is State.MASTER:
                out += self._run(name, self._machines[name].force_state(State.BACKUP, now, reason), now)
        return out

    def release(self, names: Iterable[str]) -> None:
        """Let held instances act on their priority again (at their next master-down timer)."""
        names = list(names)  # walked twice: an iterator would release the machines but keep them held here
        for name in names:
            if name in self._machines:
                self._machines[name].held = False
        self.held.difference_update(names)

    # ------------------------------------------------------------------ plumbing
    def _consent(self, machine: VrrpMachine) -> GroupConsent:
        group = self._group_of.get(machine.name)
        consent = ALONE if group is None else group.consent(machine)
        return replace(consent, become_master=False) if machine.name in self.held else consent

    def _run(self, name: str, actions: list[Action], now: float) -> list[CoreAction]:
        """Splice the group's follow-up right after the member's own state change, then the timers."""
        group = self._group_of.get(name)
        out: list[CoreAction] = []
        for action in actions:
            out.append(action)
            if group is not None and isinstance(action, StateChanged) and action.instance == name:
                out.extend(group.member_changed(self._machines[name], action.old, action.new, now))
        touched = group.members if group is not None else (self._machines[name],)
        for m in touched:
            due = m.get_timer()
            if due != self._armed[m.name]:
                self._armed[m.name] = due
                out.append(TimerChanged(m.name, due))
        return out
