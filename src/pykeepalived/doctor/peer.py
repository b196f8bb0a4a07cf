"""`doctor --peer-config`: do the two routers' configs describe the same pair?

The guide: "ensure each interface on the backup node services the same
network as the interface on the primary node". For VRRP and the virtual
servers that means the same VRIDs, VIPs, authentication, advert intervals,
sync groups and virtual servers (with the same real servers) on both; and
different priorities, at most one `state MASTER`. Instances are paired by
name (then by interface and VRID for a renamed one); virtual servers by what
they serve. Each mismatch is one finding naming both files' FILE:LINE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from ..config.errors import Location
from ..config.model import KeepalivedConfig, RealServer, SyncGroup, VirtualServer, VrrpInstance
from ..lvs.plan import service_name
from .config_view import where
from .facts import Finding

T = TypeVar("T")
AREA = "peer"


def _at(inst: VrrpInstance, keyword: str) -> str:
    return where(inst.keyword_locations.get(keyword, inst.location))


def _mismatch(what: str, a: object, a_at: str, b: object, b_at: str, fix: str, joiner: str = "but") -> Finding:
    return Finding("ERROR", AREA, f"{what}: {a} at {a_at} {joiner} {b} at {b_at}", fix, (a_at, b_at))


def _vips(inst: VrrpInstance) -> list[str]:
    return sorted(f"{spec.address}{' dev ' + spec.device if spec.device else ''}"
                  for spec in [*inst.virtual_ipaddresses, *inst.virtual_ipaddresses_excluded])


def _auth(inst: VrrpInstance) -> tuple[str | None, str | None]:
    if inst.authentication is None:
        return None, None
    return inst.authentication.auth_type, inst.authentication.auth_pass


def _auth_text(auth: tuple[str | None, str | None]) -> str:
    kind, secret = auth
    if kind is None:
        return "no authentication"
    return f"auth_type {kind}" + (f" auth_pass of {len(secret)} characters" if secret is not None else "")


def _pair_instances(a: KeepalivedConfig, b: KeepalivedConfig) -> tuple[list[tuple[VrrpInstance, VrrpInstance]],
                                                                      list[VrrpInstance], list[VrrpInstance]]:
    pairs = [(ia, b.vrrp_instances[name]) for name, ia in a.vrrp_instances.items() if name in b.vrrp_instances]
    only_a = [i for n, i in a.vrrp_instances.items() if n not in b.vrrp_instances]
    only_b = [i for n, i in b.vrrp_instances.items() if n not in a.vrrp_instances]
    for ia in list(only_a):  # renamed: the same interface and VRID
        twin = next((ib for ib in only_b if (ib.interface, ib.virtual_router_id) == (ia.interface,
                                                                                       ia.virtual_router_id)), None)
        if twin is not None:
            pairs.append((ia, twin))
            only_a.remove(ia)
            only_b.remove(twin)
    return pairs, only_a, only_b


def instance_findings(a: KeepalivedConfig, b: KeepalivedConfig, file_a: str, file_b: str) -> list[Finding]:
    out: list[Finding] = []
    pairs, only_a, only_b = _pair_instances(a, b)
    for inst, here, there in [*((i, file_a, file_b) for i in only_a), *((i, file_b, file_a) for i in only_b)]:
        out.append(Finding("ERROR", AREA, f"vrrp_instance {inst.name} ({where(inst.location)}) has no counterpart "
                           f"in {there}", f"add the same instance to {there}, or remove it from {here}",
                           (where(inst.location),)))
    for ia, ib in pairs:
        name = ia.name if ia.name == ib.name else f"{ia.name}/{ib.name}"
        checks: list[tuple[str, object, object, str, str]] = [
            ("virtual_router_id", ia.virtual_router_id, ib.virtual_router_id, "virtual_router_id",
             "use the same virtual_router_id on both routers (each router otherwise is master of its own VRID)"),
            ("advert_int", ia.advert_int_s, ib.advert_int_s, "advert_int",
             "use the same advert_int on both (keepalived logs and drops adverts with another interval)"),
            ("VIPs", _vips(ia), _vips(ib), "virtual_ipaddress",
             "list the same virtual_ipaddress entries on both routers"),
            ("VRRP version", ia.version, ib.version, "version", "use the same vrrp_version on both"),
            ("interface", ia.interface, ib.interface, "interface",
             "make sure both interfaces serve the same network (the guide: the same device on both routers)"),
        ]
        for what, va, vb, keyword, fix in checks:
            if va != vb:
                finding = _mismatch(f"vrrp_instance {name}: {what}", va, _at(ia, keyword), vb, _at(ib, keyword), fix)
                if keyword == "interface":  # other hardware may name the same network's NIC otherwise
                    finding = replace(finding, severity="WARNING")
                out.append(finding)
        if _auth(ia) != _auth(ib):
            out.append(_mismatch(f"vrrp_instance {name}: authentication differs", _auth_text(_auth(ia)),
                                 _at(ia, "authentication"), _auth_text(_auth(ib)), _at(ib, "authentication"),
                                 "use the same auth_type and auth_pass on both (adverts are otherwise dropped and "
                                 "both routers become master)"))
        if ia.priority is not None and ia.priority == ib.priority:
            out.append(_mismatch(f"vrrp_instance {name}: the same priority", ia.priority, _at(ia, "priority"),
                                 ib.priority, _at(ib, "priority"),
                                 "give the backup a lower priority (ties are broken by the higher address)", "and"))
        if ia.state == "MASTER" and ib.state == "MASTER":
            out.append(_mismatch(f"vrrp_instance {name}: state MASTER on both", "MASTER", _at(ia, "state"),
                                 "MASTER", _at(ib, "state"), "at most one router may say state MASTER; the other "
                                 "state BACKUP", "and"))
    return out


def _members(group: SyncGroup) -> list[str]:
    return sorted(m.name for m in group.members)


def _sync_findings(a: KeepalivedConfig, b: KeepalivedConfig, file_b: str) -> list[Finding]:
    out = []
    for name, ga in a.sync_groups.items():
        gb = b.sync_groups.get(name)
        if gb is None:
            out.append(Finding("ERROR", AREA, f"vrrp_sync_group {name} ({where(ga.location)}) is not in {file_b}",
                               "define the same sync groups on both routers", (where(ga.location),)))
        elif _members(ga) != _members(gb):
            out.append(_mismatch(f"vrrp_sync_group {name}: members", _members(ga), where(ga.location),
                                 _members(gb), where(gb.location), "put the same instances in the group"))
    for name, gb in b.sync_groups.items():
        if name not in a.sync_groups:
            out.append(Finding("ERROR", AREA, f"vrrp_sync_group {name} ({where(gb.location)}) has no counterpart",
                               "define the same sync groups on both routers", (where(gb.location),)))
    return out


def _vs_key(vs: VirtualServer) -> str:
    return service_name(vs)


def _rs_key(rs: RealServer) -> str:
    return f"{rs.address}:{rs.port}" if rs.port is not None else str(rs.address)


def _by(items: list[T], key: Callable[[T], str]) -> dict[str, T]:
    out: dict[str, T] = {}
    for item in items:
        out.setdefault(key(item), item)
    return out


def _loc(obj: VirtualServer | RealServer, keyword: str | None = None) -> str:
    location: Location | None = obj.keyword_locations.get(keyword, obj.location) if keyword else obj.location
    return where(location)


def virtual_server_findings(a: KeepalivedConfig, b: KeepalivedConfig, file_a: str, file_b: str) -> list[Finding]:
    out: list[Finding] = []
    vsa, vsb = _by(a.virtual_servers, _vs_key), _by(b.virtual_servers, _vs_key)
    for key, vs in vsa.items():
        if key not in vsb:
            out.append(Finding("ERROR", AREA, f"virtual_server {key} ({_loc(vs)}) is not in {file_b}",
                               f"add it to {file_b}: the backup must serve it after a takeover", (_loc(vs),)))
    for key, vs in vsb.items():
        if key not in vsa:
            out.append(Finding("ERROR", AREA, f"virtual_server {key} ({_loc(vs)}) is not in {file_a}",
                               f"add it to {file_a}, or remove it from {file_b}", (_loc(vs),)))
    for key in vsa.keys() & vsb.keys():
        va, vb = vsa[key], vsb[key]
        for what, x, y, keyword in (("lb_kind", va.lvs_method, vb.lvs_method, "lb_kind"),
                                    ("lb_algo", va.lvs_sched, vb.lvs_sched, "lb_algo"),
                                    ("persistence_timeout", va.persistence_timeout_s, vb.persistence_timeout_s,
                                     "persistence_timeout")):
            if x != y:
                out.append(_mismatch(f"virtual_server {key}: {what}", x, _loc(va, keyword), y, _loc(vb, keyword),
                                     f"use the same {what} on both routers"))
        rsa, rsb = _by(va.real_servers, _rs_key), _by(vb.real_servers, _rs_key)
        for rkey in sorted(rsa.keys() - rsb.keys()):
            out.append(Finding("ERROR", AREA, f"virtual_server {key}: real_server {rkey} ({_loc(rsa[rkey])}) is not "
                               f"in {file_b} ({_loc(vb)})", "list the same real servers on both routers",
                               (_loc(rsa[rkey]), _loc(vb))))
        for rkey in sorted(rsb.keys() - rsa.keys()):
            out.append(Finding("ERROR", AREA, f"virtual_server {key}: real_server {rkey} ({_loc(rsb[rkey])}) is not "
                               f"in {file_a} ({_loc(va)})", "list the same real servers on both routers",
                               (_loc(rsb[rkey]), _loc(va))))
        for rkey in sorted(rsa.keys() & rsb.keys()):
            ra, rb = rsa[rkey], rsb[rkey]
            if ra.weight != rb.weight:
                out.append(_mismatch(f"virtual_server {key}: real_server {rkey} weight", ra.weight,
                                     _loc(ra, "weight"), rb.weight, _loc(rb, "weight"),
                                     "use the same weight on both routers"))
    return out


def peer_findings(a: KeepalivedConfig, b: KeepalivedConfig, file_a: str, file_b: str) -> list[Finding]:
    """Every difference between the two routers' configs that makes them a bad pair."""
    return [*instance_findings(a, b, file_a, file_b), *_sync_findings(a, b, file_b),
            *virtual_server_findings(a, b, file_a, file_b)]
