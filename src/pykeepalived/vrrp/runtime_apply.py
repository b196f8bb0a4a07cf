"""The runtime API's effects in the VRRP child: hold an instance in BACKUP for maintenance, and resume.

`maintenance NAME` holds the instance and, as keepalived moves a sync group
together, every member of its vrrp_sync_group: a MASTER sends a priority-0
advert (the peer takes over at once, without waiting for its master-down
timer, as on a clean stop) and enters BACKUP; then it stays BACKUP whatever
its priority, preempt or the adverts it hears (`VrrpCore.hold`: its group
consent never lets it become master). An instance in FAULT stays in FAULT
and, once its fault clears, comes back to BACKUP and stays there. `resume`
lets it act on its priority again: a higher-priority instance with preempt
takes the master role back at its next master-down timer (about three
adverts), one with nopreempt stays BACKUP, as it would have.

`VrrpService.runtime.maintenance` holds the names, so that the state shows
`runtime.maintenance`. vrrp/service.py imports this module (`after_reload`),
so the service is typed `Any` here (importing it back would be a cycle).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("pykeepalived")

OPS = ("maintenance", "resume")


def group_members(config: Any, name: str) -> list[str]:
    """The instance and the other members of its sync group, in the group's order."""
    inst = config.vrrp_instances[name]
    group = config.sync_groups.get(inst.sync_group) if inst.sync_group else None
    if group is None:
        return [name]
    return [m.name for m in group.members if m.name in config.vrrp_instances]


def find_instance(service: Any, asked: str) -> str | None:
    if asked in service.config.vrrp_instances:
        return asked
    matches = [n for n in service.config.vrrp_instances if n.lower() == asked.lower()]
    return matches[0] if len(matches) == 1 else None


async def handle(service: Any, command: dict[str, Any]) -> dict[str, Any]:
    """One command from the parent: the reply {"ok", "message", "code"} (never raises for bad input)."""
    await service.ready_event.wait()  # a command sent while the child starts acts once its service runs
    op = command.get("op")
    who = str(command.get("who", "?"))
    if op not in OPS:
        return {"ok": False, "message": f"unknown VRRP command {op!r}", "code": 400}
    asked = str(command.get("instance", ""))
    name = find_instance(service, asked)
    if name is None:
        log.warning("runtime API (%s): %s of %r refused: no such VRRP instance", who, op, asked)
        return {"ok": False, "message": f"no VRRP instance {asked!r}", "code": 404}
    names = group_members(service.config, name)
    group = service.config.vrrp_instances[name].sync_group
    which = f"{name}" + (f" (sync group {group}: {', '.join(names)})" if len(names) > 1 else "")
    now = service._now()
    if op == "maintenance":
        service.runtime.maintenance.update(names)
        service._apply(service.core.hold(names, now, "maintenance (runtime API)"))
        done = f"VRRP instance {which} held in BACKUP for maintenance"
    else:
        was = any(n in service.runtime.maintenance for n in names)
        service.runtime.maintenance.difference_update(names)
        service.core.release(names)
        done = f"VRRP instance {which} resumed" if was else f"VRRP instance {which} was not in maintenance"
    log.info("runtime API (%s): %s", who, done)
    return {"ok": True, "message": done, "code": 200}


def after_reload(service: Any) -> None:
    """Keep maintenance on instances the new configuration still has (and their sync groups); drop the others."""
    rt = service.runtime
    for name in sorted(rt.maintenance - set(service.config.vrrp_instances)):
        log.info("runtime API: VRRP instance %s is gone after the reload; its maintenance is dropped", name)
        rt.maintenance.discard(name)
    held = {m for n in rt.maintenance for m in group_members(service.config, n)}
    new = held - rt.maintenance
    if new:
        log.info("runtime API: %s joined a sync group in maintenance: held in BACKUP too", ", ".join(sorted(new)))
        rt.maintenance |= new
        service._apply(service.core.hold(sorted(new), service._now(), "maintenance (runtime API), after a reload"))
    service.core.release(set(service.core.held) - rt.maintenance)
