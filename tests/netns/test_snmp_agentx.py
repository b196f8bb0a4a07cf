"""The AgentX subagent against Debian's real snmpd: snmpwalk sees the rows, snmpd restarts, traps arrive.

snmpd (master agentx, its AgentX socket in a temporary directory, no system
config: -C -c FILE) and snmptrapd run in a namespace of their own; the
subagent runs in this process against a StateStore filled with a full sample
document, as the parent runs it against Supervisor.store. snmpwalk asks over
UDP on the namespace's loopback.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import unique_prefix, wait_until
from pykeepalived.lab.netns import Netns
from pykeepalived.snmp.rows import InterfaceFacts
from pykeepalived.snmp.settings import SnmpSettings
from pykeepalived.snmp.subagent import SnmpSubagent
from pykeepalived.state.store import StateStore

from tests.unit.snmp_sample import sample

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SNMPD = "/usr/sbin/snmpd"
# snmptrapd is not installed: a plain UDP listener on the trap port keeps the datagrams, hex-encoded
TRAP_LISTENER = """\
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 162))
with open(sys.argv[1], "a") as out:
    while True:
        out.write(s.recv(65536).hex() + "\\n")
        out.flush()
"""
COMMUNITY = "pkatest"
K = ".1.3.6.1.4.1.9586.100.5"
V3 = ".1.3.6.1.2.1.207"
FACTS = {"eth0": InterfaceFacts(4, b"\x02\x00\x00\x00\x00\x01", b"\x0a\x00\x00\x01", None)}

needs_snmpd = pytest.mark.skipif(not os.path.exists(SNMPD), reason="Debian's snmpd is not installed")


def ber_oid(dotted: str) -> str:
    """The BER content of an OID, hex: how it appears inside a trap datagram."""
    subs = [int(x) for x in dotted.strip(".").split(".")]
    out = [40 * subs[0] + subs[1]]
    for sub in subs[2:]:
        chunk = [sub & 0x7F]
        sub >>= 7
        while sub:
            chunk.insert(0, 0x80 | (sub & 0x7F))
            sub >>= 7
        out += chunk
    return bytes(out).hex()


class Lab:
    def __init__(self, tmp: Path, ns: Netns) -> None:
        self.tmp, self.ns = tmp, ns
        self.socket = tmp / "master"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.snmpd: subprocess.Popen[bytes] | None = None
        self.trap_log = tmp / "traps.log"

    def start_snmpd(self) -> None:
        conf = self.tmp / "snmpd.conf"
        conf.write_text(f"master agentx\nagentXSocket {self.socket}\nagentXPerms 0600 0700\n"
                        f"agentaddress udp:127.0.0.1:161\nrocommunity {COMMUNITY} 127.0.0.1\n"
                        f"trap2sink 127.0.0.1:162 {COMMUNITY}\n")
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.tmp / "persist"), "MIBS": ""}
        with open(self.tmp / "snmpd.log", "ab") as log:
            self.snmpd = self.ns.popen([SNMPD, "-f", "-Lo", "-C", "-c", str(conf), "-M", "/usr/share/snmp/mibs"],
                                       env=env, stdout=log)
        self.procs.append(self.snmpd)
        wait_until(self.socket.exists, 10, what="snmpd's AgentX socket")

    def stop_snmpd(self) -> None:
        assert self.snmpd is not None
        self.snmpd.terminate()
        self.snmpd.wait(10)
        self.socket.unlink(missing_ok=True)

    def start_trap_listener(self) -> None:
        self.trap_log.write_text("")
        self.procs.append(self.ns.popen([sys.executable, "-c", TRAP_LISTENER, str(self.trap_log)]))
        time.sleep(0.3)

    def walk(self, oid: str) -> dict[str, str]:
        out = self.ns.run(["snmpwalk", "-v2c", "-c", COMMUNITY, "-Oen", "-M", "/usr/share/snmp/mibs", "-m", "ALL",
                           "127.0.0.1", oid], timeout_s=30).stdout
        rows = {}
        for line in out.splitlines():
            name, _, value = line.partition(" = ")
            rows[name] = value
        return rows


class AgentThread:
    """The subagent in an event loop of its own, as the parent's loop would run it."""

    def __init__(self, store: StateStore, settings: SnmpSettings) -> None:
        self.loop = asyncio.new_event_loop()
        self.agent = SnmpSubagent(store, settings, facts=lambda names: FACTS, ping_interval_s=1.0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> AgentThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.agent.start(), self.loop).result(10)
        return self

    def call(self, fn: object, *args: object) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn(*args)  # type: ignore[operator]
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.agent.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    ns = Netns(f"{unique_prefix('snmp')}-a")
    ns.create()
    lab = Lab(tmp_path, ns)
    try:
        yield lab
    finally:
        for proc in lab.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        ns.delete()


@needs_snmpd
def test_snmpwalk_through_snmpd_shows_the_vrrp_and_virtual_server_rows(lab: Lab) -> None:
    lab.start_trap_listener()
    lab.start_snmpd()
    store = StateStore()
    doc = sample()
    for name in ("daemon", "vrrp", "checker"):
        store.set_part(name, doc[name])
    settings = SnmpSettings(vrrp=True, checker=True, rfcv3=True, traps=True, socket=str(lab.socket))
    with AgentThread(store, settings) as agent:
        wait_until(lambda: agent.agent.connected, 15, what="the subagent registered with snmpd")
        rows = lab.walk(K)
        assert rows[f"{K}.2.3.1.2.1"] == 'STRING: "VI_1"' and rows[f"{K}.2.3.1.2.2"] == 'STRING: "VI_3"'
        assert rows[f"{K}.2.3.1.4.1"] == "INTEGER: 2" and rows[f"{K}.2.3.1.4.2"] == "INTEGER: 1"
        assert rows[f"{K}.2.3.1.3.1"] == "Gauge32: 51"
        assert rows[f"{K}.1.2.0"] == 'STRING: "lvs1"'
        assert rows[f"{K}.3.3.1.6.1"] == 'Hex-STRING: C0 00 02 0A '
        assert rows[f"{K}.3.3.1.7.1"] == "Gauge32: 80"
        assert rows[f"{K}.3.3.1.9.1"] == "INTEGER: 4"
        assert rows[f"{K}.3.4.1.6.1.1"] == "INTEGER: 1" and rows[f"{K}.3.4.1.6.1.2"] == "INTEGER: 2"
        assert rows[f"{K}.3.4.1.15.1.1"] == "Gauge32: 3"
        v3 = lab.walk(V3)
        assert v3[f"{V3}.1.1.1.1.6.4.52.1"] == "INTEGER: 2"
        assert v3[f"{V3}.1.1.1.1.3.4.52.1"].replace(" ", "").endswith("0A000002")
        assert v3[f"{V3}.1.1.1.1.6.4.51.1"] == "INTEGER: 3"  # VI_1 (VRRPv2) too, as Debian's keepalived

        # a state change: the walk shows it at once, and a trap reaches snmptrapd
        vrrp = sample()["vrrp"]
        vrrp["instances"][1]["state"] = "MASTER"
        agent.call(store.set_part, "vrrp", vrrp)
        assert lab.walk(f"{K}.2.3.1.4")[f"{K}.2.3.1.4.2"] == "INTEGER: 2"
        wait_until(lambda: ber_oid(f"{K}.2.10.0.2") in lab.trap_log.read_text(), 10,
                   what="vrrpInstanceStateChange sent on by snmpd")
        wait_until(lambda: ber_oid(f"{V3}.0.1") in lab.trap_log.read_text(), 10,
                   what="vrrpv3NewMaster sent on by snmpd")
        checker = sample()["checker"]
        checker["virtual_servers"][0]["real_servers"][1]["healthy"] = True
        agent.call(store.set_part, "checker", checker)
        wait_until(lambda: ber_oid(f"{K}.3.5.0.1") in lab.trap_log.read_text(), 10,
                   what="realServerStateChange sent on by snmpd")
        events = store.snapshot()["events"]
        assert any(e["kind"] == "snmp" and "vrrpInstanceStateChange sent" in e["text"] for e in events)

        # snmpd restarts: the subagent comes back on its own
        lab.stop_snmpd()
        wait_until(lambda: not agent.agent.connected, 10, what="the subagent noticing snmpd gone")
        time.sleep(0.5)
        lab.start_snmpd()
        wait_until(lambda: agent.agent.connected, 20, what="the subagent registered again")
        assert lab.walk(f"{K}.2.3.1.2")[f"{K}.2.3.1.2.1"] == 'STRING: "VI_1"'
