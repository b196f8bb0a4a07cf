"""SIGRTMIN+2's keepalived.json, keepalived 2.2.7's version 1 layout (vrrp/vrrp_json.c).

A top-level array, one `{"data": {...}, "stats": {...}}` per instance, written
compact as keepalived's json_writer does. The forms matter to exporters written
in Go, which decode into typed fields: integers stay integers (a float such as
`1.0` does not decode into an int), `adver_int`/`master_adver_int`/`garp_delay`
are printed like C's `%g` (1, 0.5), `last_transition` like `%f` (always a
fraction), `vipset`/`nopreempt`/... are JSON booleans where keepalived writes
booleans and 0/1 where it writes integers. Optional keys (`ifp_ifname`,
`script_*`, `vips`, `evips`, `vroutes`, `vrules`, `track_ifp`, `track_script`,
`auth_data`) are present exactly when keepalived writes them.
"""

from __future__ import annotations

import json
from typing import Any

from .dump_view import KEEPALIVED_COUNTERS, DumpView, InstanceView


class _Fixed6(float):
    """A float printed with six decimals, as keepalived's "%f"."""

    def __repr__(self) -> str:
        return f"{float(self):f}"


def _g(value: float) -> float | int:
    """C's %g for the small numbers involved: 1 for 1.0, 0.5 for 0.5."""
    return int(value) if float(value).is_integer() else float(f"{value:g}")


def instance_data(inst: InstanceView) -> dict[str, Any]:
    """The `data` object of one instance, keys in keepalived's order."""
    d: dict[str, Any] = {
        "iname": inst.name,
        "dont_track_primary": int(inst.dont_track_primary),
        "skip_check_adv_addr": int(inst.skip_check_adv_addr),
        "strict_mode": int(inst.strict_mode),
        "vmac_ifname": inst.vmac_ifname,
    }
    if inst.interface:
        d["ifp_ifname"] = inst.interface
    d.update({
        "master_priority": inst.master_priority,
        "last_transition": _Fixed6(inst.last_transition),
        "garp_delay": _g(inst.garp_delay_s),
        "garp_refresh": int(inst.garp_refresh_s),
        "garp_rep": inst.garp_rep,
        "garp_refresh_rep": inst.garp_refresh_rep,
        "garp_lower_prio_delay": int(inst.garp_lower_prio_delay_s),
        "garp_lower_prio_rep": inst.garp_lower_prio_rep,
        "lower_prio_no_advert": int(inst.lower_prio_no_advert),
        "higher_prio_send_advert": int(inst.higher_prio_send_advert),
        "vrid": inst.vrid,
        "base_priority": inst.base_priority,
        "effective_priority": inst.effective_priority,
        "vipset": inst.vipset,
        "promote_secondaries": inst.promote_secondaries,
        "adver_int": _g(inst.advert_int_cs / 100),
        "master_adver_int": _g(inst.master_adver_int_cs / 100),
        "accept": int(inst.accept),
        "nopreempt": inst.nopreempt,
        "preempt_delay": int(inst.preempt_delay_s),
        "state": inst.state,
        "wantstate": inst.wantstate,
        "version": inst.version,
        "smtp_alert": inst.smtp_alert,
        "notify_deleted": inst.notify_deleted,
    })
    for script in inst.notify_scripts:
        d[script.json_key] = script.command
    for key, values in (("vips", inst.vips), ("evips", inst.evips), ("vroutes", inst.vroutes),
                        ("vrules", inst.vrules), ("track_ifp", tuple(t.name for t in inst.track_interfaces)),
                        ("track_script", inst.track_script_commands)):
        if values:
            d[key] = list(values)
    d["auth_type"] = inst.auth_type
    if inst.auth_type:
        d["auth_data"] = inst.auth_data
    return d


def instance_stats(inst: InstanceView) -> dict[str, int]:
    """The `stats` object: keepalived's counters only, in its order."""
    return {name: int(inst.stats.get(name, 0)) for name in KEEPALIVED_COUNTERS}


def format_json(view: DumpView) -> str:
    """The whole file, compact like keepalived's json_writer (no newline at the end either)."""
    doc = [{"data": instance_data(i), "stats": instance_stats(i)} for i in view.instances]
    return _encode(doc)


def _encode(value: object) -> str:
    """JSON text with keepalived's number forms (json.dumps cannot print "%f" floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _Fixed6):
        return repr(value)
    if isinstance(value, (int, float, str)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"not in a keepalived dump: {value!r}")
