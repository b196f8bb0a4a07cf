"""The element writer (lvs/nft_elements.py) against libnftables and through the backend, in this namespace.

Prints one JSON object (tests/netns/test_nft_elements.py):
- `kinds`: per map kind nft_rules makes, the elements of a map written by the
  writer and of a twin written by libnftables' JSON, after a fill and an
  update (delete + add of existing keys, as a Maglev change is);
- `refused` / `refused_map_after`: the error of a batch whose second map does
  not exist, and the first map's elements afterwards (nothing applied);
- `bad_data`: the error for an IPv6 address in an IPv4 map;
- `many_maps`: elements listed after one batch to 600 maps (600 ACKs: more
  than a default receive buffer holds);
- `backend`: per step of the backend's changes, whether every slot map in the
  kernel holds what the desired table says (and which differ), and how many
  elements the writer wrote;
- `undone`: after a change whose libnftables part fails, whether the maps hold
  the state before it again (`written`: the change's elements and their undo).
"""

import json
import time
from dataclasses import replace

import nftables

from pykeepalived.lvs.model import DataPlaneError, DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend
from pykeepalived.lvs.nft_elements import ElementChange, ElementWriter
from pykeepalived.lvs.nft_rules import SLOT_KEY_TYPEOF, TABLE

nft = nftables.Nftables()
nft.set_json_output(True)


def cmd(text):
    rc, out, err = nft.cmd(text)
    if rc != 0:
        raise RuntimeError(err)
    return out


def elements(family, table, name):
    """The map's elements as {key: data}; listed again while a table still resizes (a dump then skips or repeats)."""
    for _ in range(20):
        listed = json.loads(cmd(f"list map {family} {table} {name}"))["nftables"][1]["map"].get("elem", [])
        got = {json.dumps(k): json.dumps(v, sort_keys=True) for k, v in listed}
        if len(got) == len(listed):
            return got
        time.sleep(0.1)
    return got


def address(family, i):
    return f"2001:db8:{i // 250}::{i % 250 + 1}" if family == "ip6" else f"10.20.{i // 250}.{i % 250 + 1}"


KINDS = [("ip", "ip daddr"), ("ip", "ip daddr . tcp dport"), ("ip", "ip daddr . udp dport"),
         ("ip6", "ip6 daddr"), ("ip6", "ip6 daddr . sctp dport"), ("ip", "verdict")]


def datum(family, data_type, i):
    if data_type == "verdict":
        return {"goto": {"target": f"c{i % 3}"}}
    if "." in data_type:
        return {"concat": [address(family, i), 8000 + i]}
    return address(family, i)


def compare_kinds(writer):
    out = {}
    for n, (family, data_type) in enumerate(KINDS):
        table = f"t{n}"
        cmd(f"add table {family} {table}\n" + "".join(f"add chain {family} {table} c{i}\n" for i in range(3))
            + "".join(f"add map {family} {table} {m} {{ typeof {SLOT_KEY_TYPEOF} : {data_type} ; }}\n"
                      for m in ("lib", "nl")))
        fill = [(slot, datum(family, data_type, slot % 97)) for slot in range(509)]
        update = [(slot, datum(family, data_type, slot % 89 + 1)) for slot in range(0, 509, 7)]
        obj = {"family": family, "table": table, "name": "lib"}
        cmd(json.dumps({"nftables": [{"add": {"element": {**obj, "elem": [list(p) for p in fill]}}}]}))
        cmd(json.dumps({"nftables": [{"delete": {"element": {**obj, "elem": [k for k, _ in update]}}},
                                     {"add": {"element": {**obj, "elem": [list(p) for p in update]}}}]}))
        texts = [(k, json.dumps(v, sort_keys=True)) for k, v in fill]
        writer.send([ElementChange(family, table, "nl", SLOT_KEY_TYPEOF, data_type, add=texts)])
        writer.send([ElementChange(family, table, "nl", SLOT_KEY_TYPEOF, data_type, delete=[k for k, _ in update],
                                   add=[(k, json.dumps(v, sort_keys=True)) for k, v in update])])
        lib, nl = elements(family, table, "lib"), elements(family, table, "nl")
        out[f"{family} {data_type}"] = {"same": lib == nl, "count": len(nl),
                                        "differ": sorted(set(lib.items()) ^ set(nl.items()))[:3]}
        cmd(f"delete table {family} {table}")
    return out


def refusals(writer):
    cmd(f"add table ip r\nadd map ip r m {{ typeof {SLOT_KEY_TYPEOF} : ip daddr ; }}\n"
        "add element ip r m { 1 : 10.0.0.1 }")
    good = ElementChange("ip", "r", "m", SLOT_KEY_TYPEOF, "ip daddr", delete=[1], add=[(1, '"10.0.0.2"')])
    missing = ElementChange("ip", "r", "no-such-map", SLOT_KEY_TYPEOF, "ip daddr", add=[(1, '"10.0.0.3"')])
    out = {}
    try:
        writer.send([good, missing])
        out["refused"] = None
    except DataPlaneError as exc:
        out["refused"] = str(exc)
    out["refused_map_after"] = elements("ip", "r", "m")
    try:
        writer.send([ElementChange("ip", "r", "m", SLOT_KEY_TYPEOF, "ip daddr", add=[(2, '"2001:db8::1"')])])
        out["bad_data"] = None
    except DataPlaneError as exc:
        out["bad_data"] = str(exc)
    out["after_bad_data"] = elements("ip", "r", "m")
    cmd("delete table ip r")
    return out


def many_maps(writer):
    cmd("add table ip many\n" + "".join(f"add map ip many m{i} {{ typeof {SLOT_KEY_TYPEOF} : ip daddr ; }}\n"
                                         for i in range(600)))
    writer.send([ElementChange("ip", "many", f"m{i}", SLOT_KEY_TYPEOF, "ip daddr", add=[(0, f'"10.0.{i // 250}.1"')])
                 for i in range(600)])
    listed = json.loads(cmd("list table ip many"))["nftables"]
    count = sum(len(item["map"].get("elem", [])) for item in listed if "map" in item)
    cmd("delete table ip many")
    return count


def service(name, vip, scheduler, n, down=(), persistence=None, port=80, v6=False):
    fmt = "2001:db8:2::{}" if v6 else "10.21.0.{}"
    dests = tuple(Destination(fmt.format(i + 1), port, 1 + i % 3, alive=i not in down) for i in range(n))
    return VirtualService(name, "address", vip, 80, "TCP", scheduler=scheduler, destinations=dests,
                          persistence_timeout_s=persistence)


def kernel_matches(backend):
    """Each slot map of the applied table against the kernel's (None when equal, else the first differences)."""
    bad = {}
    for family, ruleset in backend.applied.items():
        for name, slot_map in ruleset.slot_maps.items():
            want = {json.dumps(slot): json.dumps(json.loads(text), sort_keys=True)
                    for slot, text in enumerate(slot_map.data)}
            got = elements(family, TABLE, name)
            if got != want:
                bad[name] = sorted(set(want.items()) ^ set(got.items()))[:3]
    return bad


def backend_steps():
    b = NftablesBackend()
    b.ctx.device_for = lambda address: "lo"
    steps = {
        "load": [service("mh", "203.0.113.1", "mh", 40), service("rr", "203.0.113.2", "rr", 70),
                 service("per", "203.0.113.3", "mh", 4, persistence=60),
                 service("v6", "2001:db8::1", "wlc", 5, v6=True)],
    }
    steps["one down, rr shorter"] = [service("mh", "203.0.113.1", "mh", 40, down=(7,)),
                                     service("rr", "203.0.113.2", "rr", 69),
                                     service("per", "203.0.113.3", "mh", 4, down=(1,), persistence=60),
                                     service("v6", "2001:db8::1", "wlc", 5, down=(2,), v6=True)]
    steps["back, rr longer, a server more"] = [service("mh", "203.0.113.1", "mh", 40),
                                               service("rr", "203.0.113.2", "rr", 75),
                                               service("per", "203.0.113.3", "mh", 5, persistence=60),
                                               service("v6", "2001:db8::1", "wlc", 6, v6=True)]
    steps["two services fewer"] = steps["back, rr longer, a server more"][:2]
    out = {}
    for step, services in steps.items():
        written = b.nft.elements.written
        b.apply_now(DesiredTable(tuple(services)))
        out[step] = {"differ": kernel_matches(b), "written": b.nft.elements.written - written}
    # a change whose libnftables part fails (a DR server on a device that does not exist) after its elements went
    before = {name: elements("ip", TABLE, name) for name in b.applied["ip"].slot_maps}
    dr = VirtualService("dr", "address", "203.0.113.9", 80, "TCP", method="DR",
                        destinations=(Destination("10.22.0.1", 80, 1, method="DR"),))
    b.ctx.device_for = lambda address: "no-such-dev"
    failing = [service("mh", "203.0.113.1", "mh", 40, down=(3, 4)), replace(steps["two services fewer"][1]), dr]
    written = b.nft.elements.written
    try:
        b.apply_now(DesiredTable(tuple(failing)))
        failed = None
    except DataPlaneError as exc:
        failed = str(exc)
    after = {name: elements("ip", TABLE, name) for name in b.applied["ip"].slot_maps}
    undone = {"failed": failed, "same": before == after, "maps": sorted(before),
              "written": b.nft.elements.written - written}
    b.close_now()
    return out, undone


writer = ElementWriter()
result = {"kinds": compare_kinds(writer), **refusals(writer), "many_maps": many_maps(writer)}
result["backend"], result["undone"] = backend_steps()
writer.close()
print(json.dumps(result))
