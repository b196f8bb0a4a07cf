"""What one slot-map element costs to write: libnftables' JSON against nfnetlink (pyroute2's encoder, ours).

In a network namespace of its own (deleted at the end, also on error), a map
like nft_rules' Maglev slot maps (`typeof numgen inc mod 1 : ip daddr . tcp
dport`, 1,000 distinct real servers) gets `--elements` elements (65,000 by
default) in one transaction, then an update of 480 of them (delete + add of
existing keys, as a server leaving a 65,521-slot Maglev table moves), written
three ways, each into a map of its own:

- `json`: libnftables' JSON, as lvs/nft.py sent them before nft_elements
  (the anchor: ratios against it hold on a shared machine);
- `pyroute2`: pyroute2 0.9.7's `nft_set_elem_list_msg` encoder (its element
  list declared with NLA_F_NESTED, which the kernel requires and 0.9.7 omits),
  sent and acknowledged as below;
- `nfnetlink`: lvs/nft_elements.ElementWriter, what the backend uses.

Prints one JSON line: per way the best of `--repeat` runs, in total and split
into encoding and kernel (send and ACKs) where it applies, us per element,
the ratio to `json`, and whether the three maps list the same elements at the
end. The kernel's own share (about 2 us an element here) is in every figure.
`--pyroute2-elements` caps pyroute2's run (its encoder is slow) and its
per-element figure is from that count. Needs root and python3-nftables.

    .venv/bin/python bench/nft_elements.py [--elements 65000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pykeepalived.lab import Netns, unique_prefix

SERVERS = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(1000)]
DATA_TYPE = "ip daddr . tcp dport"
UPDATE = 480


def inside(n: int, repeat: int, pyroute2_n: int) -> dict[str, Any]:
    import nftables  # type: ignore[import-untyped]

    from pykeepalived.lvs.nft_elements import ElementChange, ElementWriter
    from pykeepalived.lvs.nft_rules import SLOT_KEY_TYPEOF

    nft = nftables.Nftables()
    nft.set_json_output(True)

    def cmd(text: str) -> str:
        rc, out, err = nft.cmd(text)
        if rc != 0:
            raise RuntimeError(err)
        return str(out)

    def texts(count: int, shift: int) -> list[tuple[int, str]]:
        return [(k, f'{{"concat": ["{SERVERS[(k * 7 + shift) % 1000]}", 80]}}') for k in range(count)]

    step = max(1, n // UPDATE)
    update_keys = list(range(0, n, step))[:UPDATE]

    def fresh(name: str) -> None:
        cmd(f"add table ip bench\nadd map ip bench {name} {{ typeof {SLOT_KEY_TYPEOF} : {DATA_TYPE} ; }}")
        cmd(f"flush map ip bench {name}")

    def via_json(name: str, count: int) -> tuple[float, float]:
        fresh(name)
        obj = {"family": "ip", "table": "bench", "name": name}
        t0 = time.perf_counter()
        cmd(json.dumps({"nftables": [{"add": {"element": {**obj, "elem": [[k, json.loads(t)] for k, t in
                                                                            texts(count, 0)]}}}]}))
        load = time.perf_counter() - t0
        keys = set(update_keys)
        update = [(k, json.loads(t)) for k, t in texts(count, 3) if k in keys]
        t0 = time.perf_counter()
        cmd(json.dumps({"nftables": [{"delete": {"element": {**obj, "elem": [k for k, _ in update]}}},
                                     {"add": {"element": {**obj, "elem": [list(p) for p in update]}}}]}))
        return load, time.perf_counter() - t0

    writer = ElementWriter()

    def via_writer(name: str, count: int) -> tuple[float, float]:
        fresh(name)
        t0 = time.perf_counter()
        writer.send([ElementChange("ip", "bench", name, SLOT_KEY_TYPEOF, DATA_TYPE, add=texts(count, 0))])
        load = time.perf_counter() - t0
        keys = set(update_keys)
        update = [p for p in texts(count, 3) if p[0] in keys]
        t0 = time.perf_counter()
        writer.send([ElementChange("ip", "bench", name, SLOT_KEY_TYPEOF, DATA_TYPE, delete=[k for k, _ in update],
                                   add=update)])
        return load, time.perf_counter() - t0

    def via_pyroute2(name: str, count: int) -> tuple[float, float]:
        from pyroute2.netlink import NLA_F_NESTED  # type: ignore[import-untyped]
        from pyroute2.netlink.nfnetlink.nftsocket import nft_set_elem_list_msg  # type: ignore[import-untyped]

        class elem_list(nft_set_elem_list_msg):  # type: ignore[misc]
            nla_map = (('NFTA_SET_ELEM_LIST_UNSPEC', 'none'), ('NFTA_SET_ELEM_LIST_TABLE', 'asciiz'),
                       ('NFTA_SET_ELEM_LIST_SET', 'asciiz'), ('NFTA_SET_ELEM_LIST_ELEMENTS', '*set_elem|nested'),
                       ('NFTA_SET_ELEM_LIST_SET_ID', 'be32'))

            class set_elem(nft_set_elem_list_msg.set_elem):  # type: ignore[misc]
                nla_flags = NLA_F_NESTED
                nla_map = (('NFTA_SET_ELEM_UNSPEC', 'none'), ('NFTA_SET_ELEM_KEY', 'data_attributes|nested'),
                           ('NFTA_SET_ELEM_DATA', 'data_attributes|nested'))

        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
        sock.bind((0, 0))

        def messages(pairs: list[tuple[int, str | None]], kind: int, seq: int) -> tuple[list[bytes], float]:
            t0 = time.perf_counter()
            out = []
            for i in range(0, len(pairs), 1800):  # the element list's 16-bit length
                msg = elem_list()
                items = []
                for key, text in pairs[i:i + 1800]:
                    attrs: list[Any] = [("NFTA_SET_ELEM_KEY", {"attrs": [("NFTA_DATA_VALUE", struct.pack("=I", key))]})]
                    if text is not None:
                        address, port = json.loads(text)["concat"]
                        attrs.append(("NFTA_SET_ELEM_DATA", {"attrs": [("NFTA_DATA_VALUE", socket.inet_aton(address)
                                                                        + struct.pack("!Hxx", port))]}))
                    items.append({"attrs": attrs})
                msg["attrs"] = [("NFTA_SET_ELEM_LIST_TABLE", "bench"), ("NFTA_SET_ELEM_LIST_SET", name),
                                ("NFTA_SET_ELEM_LIST_ELEMENTS", items)]
                msg["header"]["type"] = 10 << 8 | kind
                msg["header"]["flags"] = 1 | 4 | (0x400 if kind == 12 else 0)
                msg["header"]["sequence_number"] = seq + len(out)
                msg["nfgen_family"] = 2
                msg.encode()
                out.append(bytes(msg.data))
            return out, time.perf_counter() - t0

        def send(parts: list[bytes]) -> None:
            begin = struct.pack("=IHHIIBBH", 20, 0x10, 1, 1, 0, 0, 0, socket.htons(10))
            end = struct.pack("=IHHIIBBH", 20, 0x11, 1, 2, 0, 0, 0, socket.htons(10))
            data = begin + b"".join(parts) + end
            sock.setsockopt(socket.SOL_SOCKET, 32, len(data) + 4096)  # SO_SNDBUFFORCE
            sock.send(data)
            acks = 0
            while True:
                try:
                    answer = sock.recv(1 << 16, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                offset = 0
                while offset < len(answer):
                    length, kind = struct.unpack_from("=IH", answer, offset)
                    if kind == 2:
                        if struct.unpack_from("=i", answer, offset + 16)[0]:
                            raise RuntimeError("pyroute2's elements refused")
                        acks += 1
                    offset += (length + 3) & ~3
            if acks != len(parts):
                raise RuntimeError(f"{acks} ACKs for {len(parts)} messages")

        fresh(name)
        t0 = time.perf_counter()
        parts, _ = messages(list(texts(count, 0)), 12, 10)
        send(parts)
        load = time.perf_counter() - t0
        keys = set(update_keys)
        update = [p for p in texts(count, 3) if p[0] in keys]
        t0 = time.perf_counter()
        deletions, _ = messages([(k, None) for k, _ in update], 14, 10)
        additions, _ = messages(list(update), 12, 10 + len(deletions))
        send(deletions + additions)
        updated = time.perf_counter() - t0
        sock.close()
        return load, updated

    def listing(name: str) -> list[Any]:
        """The map's elements; listed again while its hash table still resizes (a dump then repeats or skips)."""
        for _ in range(50):
            elems = json.loads(cmd(f"list map ip bench {name}"))["nftables"][1]["map"].get("elem", [])
            if len({json.dumps(e) for e in elems}) == len(elems):
                break
            time.sleep(0.1)
        return sorted(json.dumps(e) for e in elems)

    ways = {"json": (via_json, n), "pyroute2": (via_pyroute2, pyroute2_n), "nfnetlink": (via_writer, n)}
    out: dict[str, Any] = {"benchmark": "nft-elements", "elements": n, "update_elements": len(update_keys),
                           "pyroute2_elements": pyroute2_n}
    for way, (run, count) in ways.items():
        best_load, best_update = float("inf"), float("inf")
        for _ in range(repeat):
            load, update = run(f"m_{way}", count)
            best_load, best_update = min(best_load, load), min(best_update, update)
        out[way] = {"load_s": round(best_load, 4), "us_per_element": round(best_load / count * 1e6, 2),
                    f"update_{len(update_keys)}_ms": round(best_update * 1000, 3)}
    anchor = out["json"]
    for way in ways:
        out[way]["load_ratio_to_json"] = round(anchor["us_per_element"] / out[way]["us_per_element"], 2)
        key = f"update_{len(update_keys)}_ms"
        out[way]["update_ratio_to_json"] = round(anchor[key] / out[way][key], 2)
    out["same_elements"] = listing("m_json") == listing("m_nfnetlink") and (
        pyroute2_n != n or listing("m_json") == listing("m_pyroute2"))
    writer.close()
    cmd("delete table ip bench")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=65000, help="elements of the load")
    parser.add_argument("--repeat", type=int, default=3, help="runs per way (the best counts)")
    parser.add_argument("--pyroute2-elements", type=int, default=65000, help="elements of pyroute2's load (slow)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args.elements, args.repeat, args.pyroute2_elements)), flush=True)
        return 0
    ns = Netns(unique_prefix("nftel"))
    ns.create()
    try:
        proc = subprocess.run(ns.argv([sys.executable, str(Path(__file__).resolve()), "--inside",
                                       "--elements", str(args.elements), "--repeat", str(args.repeat),
                                       "--pyroute2-elements", str(args.pyroute2_elements)]),
                              stdout=subprocess.PIPE, text=True, timeout=900, check=False)
        sys.stdout.write(proc.stdout)
        return proc.returncode
    finally:
        ns.delete()


if __name__ == "__main__":
    sys.exit(main())
