"""What a rule refers to comes from its structure: the diff orders its commands by it.

Before a set or chain is deleted (or re-made with a new spec) every rule and
map element that names it must go first, or the kernel refuses the whole
batch (EBUSY). The diff finds those by the references nft_rules records for
each rule and element from the libnftables JSON tree, not by searching text.
"""

from __future__ import annotations

import json
from typing import Any

from pykeepalived.lvs.model import Destination, GroupEntry, VirtualService
from pykeepalived.lvs.nft_diff import diff
from pykeepalived.lvs.nft_rules import BuildContext, Ruleset, build, references, service_chain


def rs(i: int) -> Destination:
    return Destination(f"10.11.12.{i}", 80, 1)


def ctx() -> BuildContext:
    return BuildContext(device_for=lambda a: "eth1", tunnel_for=lambda a: f"pkt-{a}")


def sticky(name: str, port: int, timeout_s: int, **kw: Any) -> VirtualService:
    fields: dict[str, Any] = {"kind": "address", "address": "203.0.113.10", "port": port, "protocol": "TCP",
                              "scheduler": "rr", "persistence_timeout_s": timeout_s}
    fields.update(kw)
    return VirtualService(name, destinations=(rs(1), rs(2)), **fields)


def touched(cmds: list[dict[str, Any]]) -> dict[str, set[str]]:
    """verb -> names of the chains, sets and maps the commands flush, delete or add (rules by their chain)."""
    out: dict[str, set[str]] = {}
    for cmd in cmds:
        ((verb, body),) = cmd.items()
        ((kind, obj),) = body.items()
        out.setdefault(verb, set()).add(obj["chain"] if kind == "rule" else obj["name"])
    return out


def order_is_safe(old: Ruleset, cmds: list[dict[str, Any]]) -> None:
    """No set or chain is deleted while a rule of `old` still in place names it."""
    in_place = {chain: set(refs) for chain, refs in old.refs.items() if old.rules.get(chain)}
    for cmd in cmds:
        ((verb, body),) = cmd.items()
        ((kind, obj),) = body.items()
        if verb == "flush" and kind == "chain":
            in_place.pop(obj["name"], None)
        elif verb == "delete" and kind in ("chain", "set", "map"):
            users = sorted(chain for chain, refs in in_place.items() if obj["name"] in refs)
            assert not users, f"{kind} {obj['name']} deleted while chains {users} still refer to it"
            in_place.pop(obj["name"], None)


def test_references_come_from_the_expression_tree() -> None:
    rule = [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@clients"}},
        {"set": {"op": "update", "elem": {"payload": {"protocol": "ip", "field": "saddr"}}, "set": "@flows"}},
        {"vmap": {"key": {"meta": {"key": "mark"}}, "data": {"set": [[1, {"jump": {"target": "one"}}],
                                                                      [2, {"goto": {"target": "two"}}]]}}},
        {"ct helper": "ftp"},
        {"dup": {"addr": "10.0.0.1", "dev": "clients"}},  # a literal that equals a name refers to nothing
        {"goto": {"target": "three"}},
    ]
    assert references(rule) == {"clients", "flows", "one", "two", "ftp", "three"}
    assert references({"goto": {"target": "vs-a"}}) == {"vs-a"}
    assert references([{"accept": None}]) == frozenset()


def test_build_records_what_each_chain_and_element_refers_to() -> None:
    table = build([sticky("web", 80, 30)], ctx())["ip"]
    base = service_chain("web")
    assert table.refs[base] == {f"{base}-1", f"{base}-2", f"{base}-1-clients", f"{base}-2-clients", f"{base}-pick"}
    assert table.refs[f"{base}-pick"] >= {f"{base}-1", f"{base}-2"}
    assert table.refs[f"{base}-1"] == {f"{base}-1-clients"}
    assert table.refs["nat_prerouting"] == {"nat_ports", "nat_allports", "nat_fwmarks"}
    assert set(table.element_refs["nat_ports"].values()) == {frozenset({base})}
    for chain, texts in table.rules.items():  # the record is what the rules' JSON says, nothing more
        assert table.refs[chain] == frozenset().union(*(references(json.loads(t)) for t in texts))


def test_a_name_that_is_part_of_another_name_matches_only_itself() -> None:
    """Service :80's chains and sets are prefixes of service :8080's (vs-web_80... / vs-web_8080...).

    Re-making :80's client sets (new persistence timeout) rewrites :80's
    chains, and leaves every chain of :8080 alone, both ways round. (The
    text search matched quoted names, so it was not fooled by this either.)
    """
    short_old, long_old = sticky("web:80", 80, 30), sticky("web:8080", 8080, 30)
    assert service_chain("web:8080").startswith(service_chain("web:80"))
    old = build([short_old, long_old], ctx())["ip"]
    for changed, kept in (("web:80", "web:8080"), ("web:8080", "web:80")):
        new_services = [sticky(n, p, 60 if n == changed else 30) for n, p in (("web:80", 80), ("web:8080", 8080))]
        new = build(new_services, ctx())["ip"]
        cmds = diff(old, new)
        order_is_safe(old, cmds)
        done = touched(cmds)
        changed_objects = set(new.services[changed])
        kept_objects = set(new.services[kept])
        assert {f"{service_chain(changed)}-1-clients", f"{service_chain(changed)}-2-clients"} <= done["delete"]
        assert {service_chain(changed), f"{service_chain(changed)}-1"} <= done["flush"]
        assert not (done["flush"] | done["delete"] | done["add"]) & kept_objects
        # all but the pick's chain, whose rule names the server chains (flushed, kept), not the client sets
        assert changed_objects - {f"{service_chain(changed)}-pick"} <= done["add"]


def test_names_with_characters_json_escapes_are_found() -> None:
    """A virtual_server_group name may hold any letter; safe_name keeps it, json.dumps writes it as \\u00fc.

    The text search looked for the raw name in the escaped JSON and missed
    it: the rules naming a re-made set were left in place and the kernel
    refused the batch (EBUSY).
    """
    def grouped(timeout_s: int) -> VirtualService:
        return VirtualService("[grüppe]:80", "group", group="grüppe", port=80, protocol="TCP", scheduler="rr",
                              group_entries=(GroupEntry("address", "203.0.113.20", port=80),),
                              persistence_timeout_s=timeout_s, destinations=(rs(1), rs(2)))

    old = build([grouped(30)], ctx())["ip"]
    new = build([grouped(60)], ctx())["ip"]
    base = service_chain("[grüppe]:80")
    assert "ü" in base
    cmds = diff(old, new)
    order_is_safe(old, cmds)
    assert {base, f"{base}-1", f"{base}-2"} <= touched(cmds)["flush"]
