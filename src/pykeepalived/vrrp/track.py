"""Tracked interfaces, scripts and files, and what they do to an instance, without I/O.

keepalived's weight rules: a tracker with weight 0 puts the instance in FAULT
while it is down (`reverse`: while it is up); a weighted tracker moves the
effective priority instead: a positive weight counts while the tracker is up,
a negative one while it is down, and `reverse` negates what counts (weight 10
reverse: -10 while up; weight -10 reverse: +10 while down, as keepalived
2.2.7's weight_multiplier does). The sum is clamped to 1..254; an address
owner (255) ignores weights. A track_file contributes value x weight
(x -1 with reverse), at most 253; a contribution of -254 or less is a fault;
with weight 0 a non-zero value is a fault (reverse: a zero value). A
vrrp_track_process is up while it has quorum (track_process.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..config.model import DEFAULT_INTERFACE, KeepalivedConfig, TrackRef, VrrpInstance
from .settings import PRIORITY_OWNER


class TrackStatus(enum.Enum):
    INIT = "init"
    UP = "up"
    DOWN = "down"


class TrackKind(enum.Enum):
    INTERFACE = "interface"
    SCRIPT = "script"
    FILE = "file"
    PROCESS = "process"
    BFD = "bfd"  # a bfd_instance's session, reported by the BFD process (bfd/events.py)


@dataclass
class ScriptHealth:
    """rise/fall hysteresis of one vrrp_script, keepalived's counting.

    `result` runs from 0 (failed) to rise + fall - 1 (healthy); the script is
    up from `rise` upwards. A new script starts at rise - 1 (one success is
    enough, one failure is a failure) or at 0 with init_fail.
    """

    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    result: int = field(init=False)
    status: TrackStatus = field(init=False)

    def __post_init__(self) -> None:
        self.rise = max(1, self.rise)
        self.fall = max(1, self.fall)
        if self.init_fail:
            self.result, self.status = 0, TrackStatus.DOWN
        else:
            self.result, self.status = self.rise - 1, TrackStatus.INIT

    def record(self, success: bool) -> bool:
        """Count one run; True if the status changed."""
        top = self.rise + self.fall - 1
        old = self.status
        if success:
            if self.result < self.rise - 1:
                self.result += 1
            else:
                self.result = top
                self.status = TrackStatus.UP
        else:
            if self.result > self.rise:
                self.result -= 1
            else:
                self.result = 0
                self.status = TrackStatus.DOWN
        return self.status is not old


@dataclass(frozen=True)
class Tracked:
    """One tracker as one instance sees it (the weight may be the instance's override)."""

    kind: TrackKind
    name: str
    weight: int = 0
    reverse: bool = False


@dataclass
class InstanceTracking:
    """Everything one instance tracks, and the verdict: effective priority and faults."""

    base_priority: int
    items: list[Tracked] = field(default_factory=list)
    statuses: dict[tuple[TrackKind, str], TrackStatus] = field(default_factory=dict)
    file_values: dict[str, int] = field(default_factory=dict)

    def set_status(self, kind: TrackKind, name: str, status: TrackStatus) -> None:
        self.statuses[(kind, name)] = status

    def set_file_value(self, name: str, value: int) -> None:
        self.file_values[name] = value

    def verdict(self) -> tuple[int, set[str]]:
        """(effective priority, names of the trackers that put the instance in FAULT)."""
        faults: set[str] = set()
        delta = 0
        for item in self.items:
            label = f"{item.kind.value} {item.name}"
            if item.kind is TrackKind.FILE:
                value = self.file_values.get(item.name, 0)
                if item.weight == 0:
                    if (value != 0) != item.reverse:
                        faults.add(label)
                    continue
                contribution = value * item.weight * (-1 if item.reverse else 1)
                if contribution <= -254:
                    faults.add(label)
                    continue
                delta += min(contribution, 253)
                continue
            status = self.statuses.get((item.kind, item.name), TrackStatus.INIT)
            if item.weight == 0:
                if status is TrackStatus.INIT and not item.reverse:
                    faults.add(label + " (init)")
                failed = status is TrackStatus.DOWN
                if item.reverse:
                    failed = status is TrackStatus.UP
                if failed:
                    faults.add(label)
                continue
            up = status is TrackStatus.UP
            if status is TrackStatus.INIT:
                continue
            if (item.weight > 0) == up:
                delta += item.weight * (-1 if item.reverse else 1)
        if self.base_priority == PRIORITY_OWNER:
            return PRIORITY_OWNER, faults
        return min(254, max(1, self.base_priority + delta)), faults


def instance_trackers(
    instance: VrrpInstance,
    config: KeepalivedConfig,
) -> list[Tracked]:
    """The trackers one instance answers to, with keepalived's weight rules applied.

    The instance's own interface is tracked (weight 0) unless dont_track_primary;
    a sync group's trackers apply to every member; inside a sync group weights
    are ignored (the tracker becomes a FAULT tracker) unless the group says
    sync_group_tracking_weight.
    """
    group = config.sync_groups.get(instance.sync_group) if instance.sync_group else None
    keep_weights = group is None or group.sync_group_tracking_weight or group.global_tracking
    items: list[Tracked] = []
    if instance.interface and not instance.dont_track_primary:
        items.append(Tracked(TrackKind.INTERFACE, instance.interface, 0))
    refs: list[tuple[TrackKind, TrackRef]] = []
    for owner in (instance, group) if group is not None else (instance,):
        refs += [(TrackKind.INTERFACE, r) for r in owner.track_interfaces]
        refs += [(TrackKind.SCRIPT, r) for r in owner.track_scripts]
        refs += [(TrackKind.FILE, r) for r in owner.track_files]
        refs += [(TrackKind.PROCESS, r) for r in owner.track_processes]
        refs += [(TrackKind.BFD, r) for r in owner.track_bfds]
    for kind, ref in refs:
        weight, reverse = ref.weight, ref.reverse
        if kind is TrackKind.SCRIPT and ref.name in config.vrrp_scripts:
            script = config.vrrp_scripts[ref.name]
            if weight is None:
                weight, reverse = script.weight, script.weight_reverse
        elif kind is TrackKind.FILE and ref.name in config.track_files:
            tf = config.track_files[ref.name]
            if weight is None:
                weight, reverse = tf.weight, tf.weight_reverse
        elif kind is TrackKind.PROCESS and ref.name in config.track_processes:
            tp = config.track_processes[ref.name]
            if weight is None:
                weight, reverse = tp.weight, tp.weight_reverse
        elif kind is TrackKind.BFD and ref.name in config.bfd_instances:
            bfd = config.bfd_instances[ref.name]
            if weight is None:
                weight, reverse = bfd.weight, bfd.weight_reverse
        weight = weight or 0
        if not keep_weights and kind is not TrackKind.FILE:
            weight = 0
        item = Tracked(kind, ref.name, weight, reverse)
        if item not in items:
            items.append(item)
    for ifname in static_track_interfaces(instance.name, config):
        item = Tracked(TrackKind.INTERFACE, ifname, 0)
        if item not in items:
            items.append(item)
    return items


def static_track_interfaces(instance: str, config: KeepalivedConfig) -> list[str]:
    """The interfaces an instance tracks (weight 0) through the static entries of its `track_group`s.

    keepalived 2.2.7 (vrrp_static_track.c): each member of a track_group
    tracks the interface of every static address (its dev), static route (its
    dev) and static rule (its iif) that names the group, unless the entry says
    no_track: the instance is in FAULT while that interface is down.
    """
    groups = {name for name, g in config.track_groups.items() if instance in g.instances}
    found: list[str] = []
    default_if = config.global_defs.default_interface or DEFAULT_INTERFACE
    entries: list[tuple[str | None, str | None, bool]] = [
        *((a.track_group, a.device or default_if, a.no_track) for a in config.static_ipaddresses),
        *((r.track_group, r.device, r.no_track) for r in config.static_routes),
        *((r.track_group, r.iif, r.no_track) for r in config.static_rules),
    ]
    for group, ifname, no_track in entries:
        if group in groups and ifname and not no_track and ifname not in found:
            found.append(ifname)
    return found

