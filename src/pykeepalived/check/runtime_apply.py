"""The runtime API's effects in the checker child: drain, weight, take a virtual server out, and back.

The parent's API sends a command (daemon/command_server.py hands it to
`handle`); this module changes `CheckService.runtime` (state/runtime.py)
and has the data plane follow. The overrides are applied where the desired
table is built (`adjust`, called by `CheckService.current_table`), after the
checkers decided: the checkers keep running and deciding health as before,
and the override only changes the weight the table gives a server that is
in it. So:

- drain: a server in the table gets weight 0. The data plane keeps it (no
  new connections, existing ones finish: keepalived's inhibit_on_failure
  semantics, IPVS's quiescent server, our nftables backend's weight 0). A
  drained server that fails its check leaves the table as usual and comes
  back, when healthy again, still at weight 0.
- weight N: a healthy server gets weight N instead of the config's (0..65535);
  it replaces a drain.
- out: every server of the virtual server, the sorry server too, gets weight
  0: the virtual server stays in place (a client's existing connection
  finishes), it takes no new ones. `in` undoes it; drains stay.

Names are the state document's (state/runtime_names.py), the checker's own
spellings accepted too. check/service.py imports this module (`adjust`,
`after_reload`), so the service and its ServiceState are typed `Any` here:
importing them back would be an import cycle (tests/unit/test_layers.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from ..lvs.model import VirtualService
from ..state.runtime import RuntimeOverrides
from ..state.runtime_names import host_port, real_server_name, same_name, virtual_server_name

log = logging.getLogger("pykeepalived")

MAX_WEIGHT = 65535  # IPVS's weight is a signed 32-bit int, keepalived's config takes 0..65535
APPLY_WAIT_S = 3.0  # how long a command waits for the data plane to take the new table before it answers
OPS = ("drain", "undrain", "weight", "out", "in")


class Refused(Exception):
    """A command that cannot be carried out: `code` is the HTTP status the API answers with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def adjust(entry: VirtualService, vs_name: str, runtime: RuntimeOverrides) -> VirtualService:
    """The table entry with the runtime overrides applied (the entry itself when there are none)."""
    if runtime.is_empty():
        return entry
    out = vs_name in runtime.out
    dests = []
    for d in entry.destinations:
        rs = host_port(d.address, d.port)
        if out or (not d.sorry and (vs_name, rs) in runtime.drained):
            d = replace(d, weight=0)
        elif not d.sorry and d.alive and (vs_name, rs) in runtime.weights:
            d = replace(d, weight=runtime.weights[(vs_name, rs)])
        dests.append(d)
    return replace(entry, destinations=tuple(dests))


def find_service(service: Any, asked: str) -> tuple[Any, str]:
    """The virtual server an operator named, and its state-document name (Refused 404 when none)."""
    for svc in service.services:
        name = virtual_server_name(svc.plan.config)
        if same_name(asked, name, svc.plan.name):
            return svc, name
    raise Refused(404, f"no virtual server {asked!r}")


def find_server(svc: Any, vs_name: str, asked: str) -> str:
    """The real server's state-document name within `svc` (Refused 404 when it has none of that name)."""
    for key, srv in svc.servers.items():
        name = real_server_name(srv.plan.config)
        if same_name(asked, name, key):
            return name
    raise Refused(404, f"no real server {asked!r} in virtual server {vs_name}")


def _weight(command: dict[str, Any]) -> int:
    value = command.get("weight")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(400, f"weight must be an integer 0..{MAX_WEIGHT}, not {value!r}")
    if not 0 <= value <= MAX_WEIGHT:
        raise Refused(400, f"weight {value} is out of range 0..{MAX_WEIGHT}")
    return value


def change(service: Any, command: dict[str, Any]) -> tuple[Any, str]:
    """Carry one command out on `service.runtime`; returns the service touched and what was done."""
    op = command.get("op")
    if op not in OPS:
        raise Refused(400, f"unknown checker command {op!r}")
    svc, vs = find_service(service, str(command.get("vs", "")))
    rt = service.runtime
    if op == "out":
        rt.out.add(vs)
        return svc, f"virtual server {vs} taken out (every real server at weight 0, connections kept)"
    if op == "in":
        was = vs in rt.out
        rt.out.discard(vs)
        return svc, f"virtual server {vs} put back in" if was else f"virtual server {vs} was not out"
    rs = find_server(svc, vs, str(command.get("rs", "")))
    key = (vs, rs)
    if op == "drain":
        rt.drained.add(key)
        return svc, f"real server {rs} of {vs} drained (weight 0, connections kept)"
    if op == "undrain":
        was = key in rt.drained or key in rt.weights
        rt.drained.discard(key)
        rt.weights.pop(key, None)
        return svc, (f"real server {rs} of {vs} back at its configured weight" if was
                     else f"real server {rs} of {vs} was neither drained nor reweighted")
    weight = _weight(command)
    was_drained = key in rt.drained
    rt.drained.discard(key)  # an explicit weight replaces a drain (weight 0 is a drain by another name)
    rt.weights[key] = weight
    return svc, f"real server {rs} of {vs} weight set to {weight}" + (" (no longer drained)" if was_drained else "")


async def handle(service: Any, command: dict[str, Any]) -> dict[str, Any]:
    """One command from the parent: the reply {"ok", "message", "code"} (never raises for bad input)."""
    await service.ready_event.wait()  # a command sent while the child starts acts once its service runs
    who = str(command.get("who", "?"))
    try:
        svc, done = change(service, command)
    except Refused as exc:
        log.warning("runtime API (%s): %s refused: %s", who, command.get("op"), exc)
        return {"ok": False, "message": str(exc), "code": exc.code}
    log.info("runtime API (%s): %s", who, done)
    applied = await _publish(service, svc)
    return {"ok": True, "message": done if applied else f"{done}; the data plane has not taken it yet "
                                                        f"({service.dataplane_error or 'still applying'})",
            "code": 200}


async def _publish(service: Any, svc: Any) -> bool:
    """Rebuild the service's table entry and wait (a little) for the data plane to hold it."""
    svc.entry = None
    wanted = service.current_table()
    service._dirty.set()  # the publisher applies it (check/service.py), one apply at a time
    loop = asyncio.get_running_loop()
    deadline = loop.time() + APPLY_WAIT_S
    while loop.time() < deadline:
        if service.applied == wanted:
            return True
        await asyncio.sleep(0.02)
    return bool(service.applied == wanted)


def after_reload(service: Any) -> None:
    """Keep the overrides of servers the new configuration still has; drop (and log) the others."""
    rt = service.runtime
    if rt.is_empty():
        return
    names = {virtual_server_name(svc.plan.config): {real_server_name(s.plan.config) for s in svc.servers.values()}
             for svc in service.services}
    for vs in sorted(rt.out - names.keys()):
        log.info("runtime API: virtual server %s is gone after the reload; its 'out' is dropped", vs)
        rt.out.discard(vs)
    for key in sorted(k for k in {*rt.drained, *rt.weights} if k[1] not in names.get(k[0], ())):
        log.info("runtime API: real server %s of %s is gone after the reload; its override is dropped", key[1], key[0])
        rt.drained.discard(key)
        rt.weights.pop(key, None)
    for svc in service.services:
        svc.entry = None
    service._dirty.set()
