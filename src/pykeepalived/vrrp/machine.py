"""The VRRP state machine of one instance, without I/O (RFC 3768 / RFC 5798, as keepalived runs it).

The machine takes decoded adverts, tracker news and the time as arguments
and answers with a list of actions (send an advert, add the VIPs, announce
them, a state changed...) that the asyncio shell carries out. It never reads
a clock or a socket: `get_timer()` tells the shell when to call
`handle_timer()` next. That makes every timing rule testable with a fake
clock, exactly.

Every state change goes through `_change_state()`, which checks the move
against `TRANSITIONS`, counts it and reports it once.

Beyond keepalived: on a clean stop a MASTER sends its priority-0 advert but
keeps the VIPs until another router has announced itself as master (or a
short deadline passes), so that a planned failover leaves no gap.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from .packet import Advert, AuthType, DropReason
from .settings import PRIORITY_OWNER, PRIORITY_STOP, InstanceSettings

IPAddress = IPv4Address | IPv6Address

HANDOVER_GRACE_S = 0.25
"""How long a stopping master keeps its VIPs after the new master's first advert:
long enough for the new master's gratuitous ARP/NA to reach the LAN."""


class State(enum.IntEnum):
    """keepalived's numbers (its JSON dump and SNMP use them)."""

    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3
    STOP = 98


TRANSITIONS: dict[State, frozenset[State]] = {
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT, State.STOP}),
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.STOP}),
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.STOP}),
    State.FAULT: frozenset({State.BACKUP, State.MASTER, State.STOP}),
    State.STOP: frozenset(),
}


class IllegalTransition(Exception):
    """A move TRANSITIONS does not allow: a bug in this module, never the peer's fault."""


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class SendAdvert:
    instance: str
    priority: int


@dataclass(frozen=True)
class AddVips:
    """Add the instance's VIPs, virtual routes and rules."""

    instance: str


@dataclass(frozen=True)
class RemoveVips:
    instance: str


@dataclass(frozen=True)
class Announce:
    """Send gratuitous ARP / unsolicited NA for every VIP, `repeat` times."""

    instance: str
    repeat: int
    extra: bool = False  # garp_extra_if: one GARP/NA on each extra interface only


@dataclass(frozen=True)
class StateChanged:
    instance: str
    old: State
    new: State
    priority: int
    reason: str


@dataclass(frozen=True)
class MasterRxLowerPriority:
    instance: str
    source: IPAddress
    priority: int


@dataclass(frozen=True)
class PriorityChanged:
    """notify_priority_changes: the effective priority moved (keepalived's MASTER_PRIORITY / BACKUP_PRIORITY)."""

    instance: str
    state: State
    priority: int


@dataclass(frozen=True)
class PacketDropped:
    """An advert refused; `counter` names the Stats field that counted it."""

    instance: str
    counter: str
    detail: str


@dataclass(frozen=True)
class Log:
    """A line in keepalived's voice, for the shell's logger."""

    instance: str
    message: str


@dataclass(frozen=True)
class GroupStateChanged:
    """A vrrp_sync_group as a whole reached a new state (for group notifies)."""

    group: str
    old: State
    new: State


@dataclass(frozen=True)
class Stopped:
    """The instance has finished stopping; the process may exit once all have."""

    instance: str


Action = SendAdvert | AddVips | RemoveVips | Announce | StateChanged | MasterRxLowerPriority | PacketDropped | \
    Log | Stopped | GroupStateChanged | PriorityChanged


@dataclass
class Stats:
    """Per-instance counters; names follow keepalived's JSON/stats dump where it has one."""

    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    packet_len_err: int = 0
    ip_header_err: int = 0
    version_err: int = 0
    version_mismatch: int = 0
    chksum_err: int = 0
    vrid_err: int = 0
    advert_interval_err: int = 0
    ip_ttl_err: int = 0
    invalid_type_rcvd: int = 0
    addr_list_err: int = 0
    invalid_authtype: int = 0
    authtype_mismatch: int = 0
    auth_failure: int = 0
    unicast_src_err: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0

    def count(self, counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class GroupConsent:
    """What a member's vrrp_sync_group allows it at one input (see group.py and core.py).

    The group works it out from the other members before the input and hands
    it in, so a member never calls its group nor another member: a member
    whose master-down timer fires without `become_master` keeps waiting (and
    says it wants to be master), one whose last fault clears without
    `leave_fault` stays in FAULT.
    """

    become_master: bool = True
    leave_fault: bool = True


ALONE = GroupConsent()
"""An instance outside any sync group: everything allowed."""


class MachineView(Protocol):
    """What the shell may read of a machine (read-only: its inputs are VrrpCore's methods)."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> State: ...

    @property
    def source(self) -> IPAddress | None: ...

    @property
    def effective_priority(self) -> int: ...

    @property
    def master_adver_int_cs(self) -> int: ...

    @property
    def master_address(self) -> IPAddress | None: ...

    @property
    def wants_master(self) -> bool: ...

    @property
    def faults(self) -> frozenset[str]: ...

    @property
    def counters(self) -> dict[str, int]: ...


def skew_s(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Skew_Time: v2 (256 - priority) / 256 s; v3 scaled by Master_Adver_Interval."""
    if version == 3:
        return (256 - priority) * master_adver_int_cs / 100.0 / 256.0
    return (256 - priority) / 256.0


class VrrpMachine:
    """One VRRP instance's protocol state. Inputs: start, receive, handle_timer,
    set_fault, set_priority, stop (and, for a sync group, force_state). Each
    returns the actions to carry out. It knows nothing of other machines: a
    sync group's say comes in as a GroupConsent (see core.py)."""

    def __init__(self, settings: InstanceSettings, source: IPAddress | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.state = State.INIT
        self.source = source if source is not None else (settings.unicast_src or settings.multicast_src)
        self.effective_priority = settings.base_priority
        self.master_adver_int_cs = settings.advert_int_cs
        self.master_address: IPAddress | None = None
        self.master_priority = 0
        self.wants_master = False
        self.stopping = False
        self.held = False  # runtime maintenance (VrrpCore.hold): any master's advert is taken, as with nopreempt
        self._consent = ALONE  # the group's say for the input being handled, nothing beyond it
        self.stats = Stats()
        self._faults: set[str] = set()
        self._advert_due: float | None = None
        self._down_due: float | None = None
        self._preempt_until: float | None = None
        self._garp_due: list[tuple[float, int]] = []
        self._refresh_due: float | None = None
        self._extra_due: float | None = None  # garp_extra_if, looked at when an advert goes (as keepalived)
        self._handover_deadline: float | None = None
        self._release_at: float | None = None
        self._out: list[Action] = []
        self.last_transition_s = 0.0

    # ------------------------------------------------------------------ timing helpers
    @property
    def advert_int_s(self) -> float:
        return self.settings.advert_int_cs / 100.0

    @property
    def master_adver_int_s(self) -> float:
        return self.master_adver_int_cs / 100.0

    def skew_s(self) -> float:
        priority = PRIORITY_OWNER if self.settings.owner else self.effective_priority
        return skew_s(self.settings.version, priority, self.master_adver_int_cs)

    def master_down_interval_s(self) -> float:
        return self.settings.down_timer_adverts * self.master_adver_int_s + self.skew_s()

    def get_timer(self) -> float | None:
        """The earliest time at which handle_timer() has something to do."""
        due = [t for t in (self._advert_due, self._down_due, self._refresh_due,
                           self._handover_deadline, self._release_at) if t is not None]
        due.extend(t for t, _ in self._garp_due)
        return min(due) if due else None

    @property
    def faulty(self) -> bool:
        return bool(self._faults)

    @property
    def faults(self) -> frozenset[str]:
        return frozenset(self._faults)

    @property
    def counters(self) -> dict[str, int]:
        return self.stats.as_dict()

    # ------------------------------------------------------------------ inputs
    def start(self, now: float) -> list[Action]:
        """Leave INIT: FAULT if a fault is known, MASTER at once for an address owner, else BACKUP."""
        if self.state is not State.INIT:
            return []
        if self.faulty:
            self._change_state(State.FAULT, now, "init, fault")
        elif self.settings.owner and self.settings.wanted_master:
            self._become_master(now, "address owner")
        else:
            self._enter_backup(now, "init")
        return self._drain()

    def receive(self, advert: Advert, src: IPAddress, ttl: int | None, now: float) -> list[Action]:
        """An advert for our VRID arrived (decoded and checksummed by the codec)."""
        if self.state in (State.INIT, State.STOP):
            return []
        if not self._accept(advert, src, ttl):
            return self._drain()
        self.stats.advert_rcvd += 1
        if advert.priority == PRIORITY_STOP:
            self.stats.pri_zero_rcvd += 1
        if self.stopping:
            self._receive_while_stopping(advert, src, now)
        elif self.state is State.BACKUP:
            self._receive_backup(advert, src, now)
        elif self.state is State.MASTER:
            self._receive_master(advert, src, now)
        return self._drain()

    def set_source(self, source: IPAddress) -> None:
        """The shell found the address our adverts go out from (it tells our own looped-back adverts apart)."""
        self.source = source

    def count_undecodable(self, counter: str) -> None:
        """An advert for our VRID the codec refused (a Stats field name): counted, nothing else."""
        self.stats.count(counter)

    def handle_timer(self, now: float, consent: GroupConsent = ALONE) -> list[Action]:
        self._consent = consent
        try:
            return self._handle_timer(now)
        finally:
            self._consent = ALONE

    def _handle_timer(self, now: float) -> list[Action]:
        if self._release_at is not None and now >= self._release_at:
            self._finish_stop(now, "new master announced")
            return self._drain()
        if self._handover_deadline is not None and now >= self._handover_deadline:
            self._finish_stop(now, "no new master heard")
            return self._drain()
        if self._down_due is not None and now >= self._down_due and self.state is State.BACKUP:
            self._down_due = None
            self._down_timer_expired(now)
        if self._advert_due is not None and now >= self._advert_due and self.state is State.MASTER \
                and not self.stopping:
            self._send_advert(self.effective_priority)
            self._advert_due = now + self.advert_int_s
            if self._extra_due is not None and now >= self._extra_due:
                self._emit(Announce(self.name, 1, extra=True))
                self._extra_due = now + self.settings.garp_extra_if_s
        due_garps = [(t, r) for t, r in self._garp_due if now >= t]
        if due_garps:
            self._garp_due = [(t, r) for t, r in self._garp_due if now < t]
            if self.state is State.MASTER:
                for _, repeat in due_garps:
                    self._emit(Announce(self.name, repeat))
        if self._refresh_due is not None and now >= self._refresh_due:
            if self.state is State.MASTER and not self.stopping:
                self._emit(Announce(self.name, self.settings.garp_master_refresh_repeat))
                self._refresh_due = now + self.settings.garp_master_refresh_s
            else:
                self._refresh_due = None
        return self._drain()

    def set_fault(self, reason: str, active: bool, now: float, consent: GroupConsent = ALONE) -> list[Action]:
        """A tracker without weight (or the interface) failed or recovered."""
        self._consent = consent
        try:
            return self._set_fault(reason, active, now)
        finally:
            self._consent = ALONE

    def _set_fault(self, reason: str, active: bool, now: float) -> list[Action]:
        was_faulty = self.faulty
        if active:
            self._faults.add(reason)
        else:
            self._faults.discard(reason)
        if self.state in (State.INIT, State.STOP) or self.stopping:
            return self._drain()
        if self.faulty and not was_faulty:
            self._enter_fault(now, reason)
        elif was_faulty and not self.faulty and self.state is State.FAULT:
            self._leave_fault(now)
        return self._drain()

    def set_priority(self, priority: int, now: float) -> list[Action]:
        """Weighted trackers moved the effective priority (already clamped to 1..254)."""
        if self.settings.owner or priority == self.effective_priority:
            return []
        old_skew = self.skew_s()
        self._emit(Log(self.name, f"({self.name}) Changing effective priority from "
                                  f"{self.effective_priority} to {priority}"))
        self.effective_priority = priority
        if self.state is State.BACKUP and self._down_due is not None:
            self._down_due += self.skew_s() - old_skew
        if self.settings.notify_priority_changes:
            self._emit(PriorityChanged(self.name, self.state, priority))
        return self._drain()

    def update_settings(self, settings: InstanceSettings, now: float) -> list[Action]:
        """Reload: the same virtual router with new settings (vrrp/reload_plan.py decided it may).

        The state, the master heard and every deadline stay; a changed advert
        interval moves only the next one (a master's next advert comes one
        new interval after the last one, never at once; a backup's master-down
        deadline moves by the difference), and so does a changed
        down_timer_adverts. The base priority reaches the machine through
        set_priority (the shell's tracking holds it), garp_master_refresh and
        garp_extra_if restart their period only when they changed.
        """
        old = self.settings
        old_down = self.master_down_interval_s()
        self.settings = settings
        if settings.advert_int_cs != old.advert_int_cs:
            self._emit(Log(self.name, f"({self.name}) advert interval changed from {old.advert_int_cs / 100:g}s "
                                      f"to {settings.advert_int_cs / 100:g}s"))
            if self.state is State.MASTER:
                self.master_adver_int_cs = settings.advert_int_cs
                if self._advert_due is not None:
                    self._advert_due = max(now, self._advert_due + (settings.advert_int_cs - old.advert_int_cs) / 100)
            elif settings.version == 2 or self.master_address is None:
                self.master_adver_int_cs = settings.advert_int_cs
        if self.state is State.BACKUP and self._down_due is not None:
            self._down_due = max(now, self._down_due + self.master_down_interval_s() - old_down)
        if self.state is State.MASTER:
            if settings.garp_master_refresh_s != old.garp_master_refresh_s:
                self._refresh_due = now + settings.garp_master_refresh_s if settings.garp_master_refresh_s > 0 \
                    else None
            if settings.garp_extra_if_s != old.garp_extra_if_s:
                self._extra_due = now + settings.garp_extra_if_s if settings.garp_extra_if_s > 0 else None
        if settings.preempt_delay_s <= 0:
            self._preempt_until = None
        return self._drain()

    def stop(self, now: float) -> list[Action]:
        """Clean stop (SIGTERM). A MASTER sends priority 0; with handover it keeps
        the VIPs until another router's advert arrives or the deadline passes."""
        if self.state is State.STOP or self.stopping:
            return []
        if self.state is State.MASTER:
            self._send_advert(PRIORITY_STOP)
            self._advert_due = None
            self._refresh_due = self._extra_due = None
            self._garp_due = []
            if self.settings.handover:
                self.stopping = True
                deadline_s = skew_s(self.settings.version, 1, self.master_adver_int_cs) + \
                    self.master_adver_int_s + HANDOVER_GRACE_S
                self._handover_deadline = now + deadline_s
                self._emit(Log(self.name, f"({self.name}) Stopping: priority 0 sent, keeping the VIPs "
                                          f"until a new master is heard (at most {deadline_s:.2f}s)"))
                return self._drain()
        self._finish_stop(now, "stop")
        return self._drain()

    # ------------------------------------------------------------------ receive checks
    def _drop(self, reason: DropReason | str, detail: str) -> bool:
        counter = reason if isinstance(reason, str) else reason.value
        self.stats.count(counter)
        self._emit(PacketDropped(self.name, counter, f"({self.name}) {detail}"))
        return False

    def _accept(self, advert: Advert, src: IPAddress, ttl: int | None) -> bool:
        s = self.settings
        if s.unicast:
            peer = next((p for p in s.unicast_peers if p.address == src), None)
            if ttl is not None and peer is not None and not peer.min_ttl <= ttl <= peer.max_ttl:
                return self._drop(DropReason.BAD_TTL, f"invalid TTL/HL {ttl} from {src}, "
                                                      f"expect {peer.min_ttl}-{peer.max_ttl}")
        elif ttl is not None and ttl != 255:
            return self._drop(DropReason.BAD_TTL, f"invalid TTL/HL. Received {ttl} and expect 255")
        if advert.vrid != s.vrid:
            return self._drop(DropReason.WRONG_VRID, f"received VRID {advert.vrid}, expect {s.vrid}")
        if advert.version != s.version:
            return self._drop(DropReason.WRONG_VERSION,
                              f"received version {advert.version}, this instance uses version {s.version}")
        if s.version == 2:
            if advert.auth_type not in (AuthType.NONE, AuthType.PASS, AuthType.AH):
                return self._drop(DropReason.INVALID_AUTH_TYPE, f"invalid authentication type {advert.auth_type}")
            if advert.auth_type != s.auth_type:
                return self._drop(DropReason.AUTH_TYPE_MISMATCH,
                                  f"received authentication type {advert.auth_type}, expect {int(s.auth_type)}")
            if s.auth_type == AuthType.PASS and advert.auth_data.ljust(8, b"\0")[:8] != \
                    s.auth_data.ljust(8, b"\0")[:8]:
                return self._drop(DropReason.AUTH_FAILURE, f"received an invalid password from {src}")
            if advert.advert_int_cs != s.advert_int_cs:
                return self._drop(DropReason.BAD_ADVERT_INTERVAL,
                                  f"advertisement interval mismatch mine={s.advert_int_cs // 100} "
                                  f"rcv'd={advert.advert_int_cs // 100}")
        if s.version == 3 and advert.advert_int_cs == 0:
            return self._drop(DropReason.BAD_ADVERT_INTERVAL, f"advertisement interval 0 from {src}")
        if s.check_unicast_src and s.unicast and all(p.address != src for p in s.unicast_peers):
            return self._drop("unicast_src_err", f"advert from {src} is not from a unicast peer")
        if advert.priority != PRIORITY_STOP and not s.skip_check_adv_addr and \
                set(advert.addresses) != set(s.advert_addresses):
            self.stats.addr_list_err += 1
            self._emit(Log(self.name, f"({self.name}) bogus VRRP packet received on {s.interface} !!! "
                                      f"(address list from {src} differs from ours)"))
        return True

    # ------------------------------------------------------------------ per-state receive
    def _receive_backup(self, advert: Advert, src: IPAddress, now: float) -> None:
        s = self.settings
        if advert.priority == PRIORITY_STOP:
            self._down_due = now + self.skew_s()
            return
        preempt_holding = s.preempt_delay_s > 0 and (self._preempt_until is None or now < self._preempt_until)
        if s.nopreempt or self.held or advert.priority >= self.effective_priority or preempt_holding:
            if s.version == 3:
                self.master_adver_int_cs = advert.advert_int_cs
            self.master_address = src
            self.master_priority = advert.priority
            self._down_due = now + self.master_down_interval_s()
            self.wants_master = False
            if s.preempt_delay_s > 0:
                if advert.priority >= self.effective_priority:
                    self._preempt_until = None
                elif self._preempt_until is None:
                    self._preempt_until = now + s.preempt_delay_s
            return
        self.master_address = src
        self._emit(Log(self.name, f"({self.name}) received lower priority ({advert.priority}) advert "
                                  f"from {src} - discarding"))

    def _receive_master(self, advert: Advert, src: IPAddress, now: float) -> None:
        s = self.settings
        ours = self.effective_priority
        cmp = _compare(src, self.source)
        higher = advert.priority > ours or (advert.priority == ours and cmp > 0)
        if advert.priority == PRIORITY_STOP:
            self._send_advert(ours)
            self._advert_due = now + self.advert_int_s
            return
        if higher and s.higher_prio_send_advert:
            self._send_advert(ours)
        if advert.priority < ours or (advert.priority == ours and cmp < 0):
            self._emit(Log(self.name, f"({self.name}) Received advert from {src} with lower priority "
                                      f"{advert.priority}, ours {ours}"
                                      f"{'' if s.lower_prio_no_advert else ', forcing new election'}"))
            if not s.lower_prio_no_advert:
                self._send_advert(ours)
                self._advert_due = now + self.advert_int_s
            if s.garp_lower_prio_repeat:
                self._emit(Announce(self.name, s.garp_lower_prio_repeat))
                if s.garp_lower_prio_delay_s > 0:
                    self._garp_due.append((now + s.garp_lower_prio_delay_s, s.garp_lower_prio_repeat))
            self._emit(MasterRxLowerPriority(self.name, src, advert.priority))
            return
        if higher:
            if advert.priority > ours:
                why = f"Master received advert from {src} with higher priority {advert.priority}, ours {ours}"
            else:
                why = f"Master received advert from {src} with same priority {advert.priority} " \
                      "but higher IP address than ours"
            self._emit(Log(self.name, f"({self.name}) {why}"))
            if s.version == 3:
                self.master_adver_int_cs = advert.advert_int_cs
            self.master_address = src
            self.master_priority = advert.priority
            self._leave_master(State.BACKUP, now, "higher priority advert")
            return
        self._emit(Log(self.name, f"({self.name}) WARNING - equal priority advert received from remote "
                                  "host with our IP address."))

    def _receive_while_stopping(self, advert: Advert, src: IPAddress, now: float) -> None:
        if advert.priority == PRIORITY_STOP or (self.source is not None and src == self.source):
            return
        if self._release_at is None:
            self._emit(Log(self.name, f"({self.name}) {src} is the new master (priority {advert.priority}); "
                                      "releasing the VIPs"))
            self._release_at = now + HANDOVER_GRACE_S

    # ------------------------------------------------------------------ transitions
    def _down_timer_expired(self, now: float) -> None:
        self.wants_master = True
        if not self._consent.become_master:
            self._down_due = now + self.master_down_interval_s()
            return
        self._become_master(now, "master down timer expired")

    def _become_master(self, now: float, reason: str) -> None:
        s = self.settings
        self.wants_master = True
        self._down_due = None
        self._send_advert(self.effective_priority)
        self._advert_due = now + self.advert_int_s
        self.master_address = self.source
        self.master_priority = self.effective_priority
        self.master_adver_int_cs = s.advert_int_cs
        self._emit(AddVips(self.name))
        if s.garp_master_repeat:
            self._emit(Announce(self.name, s.garp_master_repeat))
            if s.garp_master_delay_s > 0:
                self._garp_due.append((now + s.garp_master_delay_s, s.garp_master_repeat))
        self._refresh_due = now + s.garp_master_refresh_s if s.garp_master_refresh_s > 0 else None
        self._extra_due = now + s.garp_extra_if_s if s.garp_extra_if_s > 0 else None
        self.stats.become_master += 1
        self._change_state(State.MASTER, now, reason)

    def _enter_backup(self, now: float, reason: str) -> None:
        self.master_adver_int_cs = self.settings.advert_int_cs
        self._down_due = now + self.master_down_interval_s()
        self._preempt_until = None
        self.wants_master = False
        self._change_state(State.BACKUP, now, reason)

    def _leave_master(self, new: State, now: float, reason: str) -> None:
        if new is State.FAULT:
            self._send_advert(PRIORITY_STOP)
        self._advert_due = None
        self._refresh_due = self._extra_due = None
        self._garp_due = []
        self._emit(RemoveVips(self.name))
        self.stats.release_master += 1
        self.wants_master = False
        if new is State.BACKUP:
            self._down_due = now + self.master_down_interval_s()
            self._preempt_until = None
        self._change_state(new, now, reason)

    def _enter_fault(self, now: float, reason: str) -> None:
        if self.state is State.MASTER:
            self._leave_master(State.FAULT, now, reason)
        elif self.state is not State.FAULT:
            self._down_due = None
            self.wants_master = False
            self._change_state(State.FAULT, now, reason)

    def _leave_fault(self, now: float) -> None:
        if not self._consent.leave_fault:
            return
        if self.settings.owner and self.settings.wanted_master:
            self._become_master(now, "fault cleared, address owner")
        else:
            self._enter_backup(now, "fault cleared")

    def _finish_stop(self, now: float, reason: str) -> None:
        was_master = self.state is State.MASTER
        self._handover_deadline = None
        self._release_at = None
        self._advert_due = self._down_due = self._refresh_due = self._extra_due = None
        self._garp_due = []
        if was_master:
            self._emit(RemoveVips(self.name))
            self.stats.release_master += 1
        self.stopping = False
        self._change_state(State.STOP, now, reason)
        self._emit(Stopped(self.name))

    # ------------------------------------------------------------------ group hooks
    def force_state(self, new: State, now: float, reason: str) -> list[Action]:
        """A sync group moves this member along with another one (the group does not pass this on)."""
        if self.state is new or self.state is State.STOP or self.stopping:
            return []
        if new is State.MASTER:
            self._become_master(now, reason)
        elif new is State.BACKUP:
            if self.state is State.MASTER:
                self._leave_master(State.BACKUP, now, reason)
            else:
                self._enter_backup(now, reason)
        elif new is State.FAULT:
            self._enter_fault(now, reason)
        return self._drain()

    def send_stop_advert(self) -> list[Action]:
        """Runtime maintenance (vrrp/runtime_apply.py): a MASTER tells the peers to take over at once."""
        if self.state is State.MASTER and not self.stopping:
            self._send_advert(PRIORITY_STOP)
        return self._drain()

    # ------------------------------------------------------------------ plumbing
    def _send_advert(self, priority: int) -> None:
        self.stats.advert_sent += 1
        if priority == PRIORITY_STOP:
            self.stats.pri_zero_sent += 1
        self._emit(SendAdvert(self.name, priority))

    def _change_state(self, new: State, now: float, reason: str) -> None:
        old = self.state
        if new is old:
            return
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"({self.name}) {old.name} -> {new.name} ({reason})")
        self.state = new
        self.last_transition_s = now
        self._emit(StateChanged(self.name, old, new, self.effective_priority, reason))

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _drain(self) -> list[Action]:
        out, self._out = self._out, []
        return out


def _compare(a: IPAddress, b: IPAddress | None) -> int:
    """Compare a peer's address with ours, as integers (RFC: higher primary address wins)."""
    if b is None or a.version != b.version:
        return 0
    return (int(a) > int(b)) - (int(a) < int(b))

