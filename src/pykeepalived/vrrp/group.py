"""vrrp_sync_group: instances that must change state together, without I/O.

keepalived's rules, which this follows: the group goes MASTER only when every
member wants to (a member whose down timer fired waits for the others, to
avoid thrashing); one member falling back to BACKUP pulls the others back;
one member in FAULT puts the whole group in FAULT, and the group leaves FAULT
only when no member has a fault left.

The group never sits inside a member's input: before an input it tells the
member what it may do (`consent`), after it moves the other members along
(`member_changed`). `core.py` calls both; members hold no reference to the
group and never call each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from .machine import Action, GroupConsent, GroupStateChanged, Log, State, VrrpMachine


class SyncGroup:
    """One vrrp_sync_group: its members and the group's own state (for group notifies)."""

    def __init__(self, name: str, members: Sequence[VrrpMachine]) -> None:
        self.name = name
        self.members: tuple[VrrpMachine, ...] = tuple(members)
        self.state = State.INIT

    def consent(self, member: VrrpMachine) -> GroupConsent:
        """What `member` may do at its next input, given where the other members are now."""
        return GroupConsent(become_master=self._may_become_master(member),
                            leave_fault=self._may_leave_fault(member))

    def _may_become_master(self, member: VrrpMachine) -> bool:
        if self.state is State.MASTER:
            return True
        return all(m is member or m.wants_master or m.state is State.MASTER for m in self.members)

    def _may_leave_fault(self, member: VrrpMachine) -> bool:
        """Only the last member to recover leaves FAULT; it takes the others with it."""
        return not any(m.faulty for m in self.members if m is not member)

    def member_changed(self, member: VrrpMachine, old: State, new: State, now: float) -> list[Action]:
        """`member` moved from `old` to `new` on its own: move the others along, then the group's state.

        The others' own changes (in the actions returned) are not passed on again.
        """
        out: list[Action] = []
        if new in (State.MASTER, State.BACKUP, State.FAULT):
            others = [m for m in self.members if m is not member and m.state is not new
                      and m.state is not State.STOP]
            if others and not (new is State.BACKUP and old is State.INIT):
                out.append(Log(self.name, f"VRRP_Group({self.name}) Syncing instances to {new.name} state"))
                for m in others:
                    if new is State.BACKUP and m.state is State.INIT:
                        continue
                    out.extend(m.force_state(new, now, f"sync group {self.name}"))
        out.extend(self._update_state())
        return out

    def _update_state(self) -> list[Action]:
        states = {m.state for m in self.members}
        if State.FAULT in states:
            new = State.FAULT
        elif states == {State.MASTER}:
            new = State.MASTER
        elif states <= {State.BACKUP, State.INIT} and State.BACKUP in states:
            new = State.BACKUP
        elif states == {State.STOP}:
            new = State.STOP
        else:
            return []
        if new is self.state:
            return []
        old, self.state = self.state, new
        return [GroupStateChanged(self.name, old, new)]
