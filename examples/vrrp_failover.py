"""The Red Hat guide's two NAT routers, running pykeepalived on their own configs, failing over.

Builds the guide's networks in network namespaces (public 10.0.0.0/24 with a
client, private 192.168.1.0/24), starts pykeepalived on LB1 and LB2 with
examples/rhel-nat-lb1.conf and -lb2.conf unchanged (VRRP only: the
virtual_server blocks wait for the data plane), shows who holds the VIPs,
then fails LB1 three ways while the client pings the public VIP every 50 ms:
a crash (SIGKILL), its private link going down (the sync group moves the
public VIP with the private one), and a clean stop (SIGTERM, handed over
without a gap). Everything is removed at the end.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from pykeepalived.lab import Lan, LabError, PyKeepalivedPeer, VrrpSettings, unique_prefix, wait_until
from pykeepalived.lab.topology import Host

HERE = Path(__file__).resolve().parent
PUBLIC_VIP = IPv4Address("10.0.0.1")
PRIVATE_VIP = IPv4Address("192.168.1.1")


def router(host: Host, conf: Path, workdir: Path) -> PyKeepalivedPeer:
    """A pykeepalived peer that runs the guide's file as it is (the lab's settings are only a placeholder)."""
    placeholder = [VrrpSettings(vrid=50, priority=100, vips=[IPv4Interface(f"{PUBLIC_VIP}/32")])]
    peer = PyKeepalivedPeer(host, placeholder, workdir)
    peer.conf_path.write_text(conf.read_text())
    peer.instance_names = ["RH_EXT", "RH_INT"]
    return peer


def who(lb1: Host, lb1_int: Host, lb2: Host, lb2_int: Host) -> str:
    def held(ext: Host, internal: Host) -> str:
        got = [str(v) for v, h in ((PUBLIC_VIP, ext), (PRIVATE_VIP, internal)) if v in h.addresses()]
        return ", ".join(got) or "-"

    return f"LB1 holds [{held(lb1, lb1_int)}]   LB2 holds [{held(lb2, lb2_int)}]"


def ping_gap(client: Host, action: object, settle_s: float) -> float:
    """Ping the public VIP every 50 ms around `action()`; the longest run of lost pings, in seconds."""
    proc = client.netns.popen(["ping", "-n", "-i", "0.05", "-W", "0.2", "-O", str(PUBLIC_VIP)],
                              stdout=subprocess.PIPE)
    time.sleep(1.0)
    action()  # type: ignore[operator]
    time.sleep(settle_s)
    proc.terminate()
    out, _ = proc.communicate(timeout=5)
    lost = longest = 0
    for line in out.decode().splitlines():
        if "no answer yet" in line:
            lost += 1
            longest = max(longest, lost)
        elif "bytes from" in line:
            lost = 0
    return longest * 0.05


def main() -> int:
    prefix = unique_prefix("rh")[:10]
    with tempfile.TemporaryDirectory(prefix="pk-main-") as tmp, \
            Lan(f"{prefix}p", ipv4_net="10.0.0.0/24", ipv6_net="2001:db8:1::/64") as public, \
            Lan(f"{prefix}q", ipv4_net="192.168.1.0/24", ipv6_net="2001:db8:2::/64") as private:
        work = Path(tmp)
        lb1, lb2 = public.add_host("lb1", 2), public.add_host("lb2", 3)
        client = public.add_host("client", 100)
        lb1_int, lb2_int = private.attach(lb1, "eth1", 8), private.attach(lb2, "eth1", 9)
        peers = [router(lb1, HERE / "rhel-nat-lb1.conf", work), router(lb2, HERE / "rhel-nat-lb2.conf", work)]
        state = lambda: who(lb1, lb1_int, lb2, lb2_int)  # noqa: E731
        try:
            print("== LB1 and LB2 (namespaces) run pykeepalived on examples/rhel-nat-lb{1,2}.conf")
            peers[1].start()
            peers[0].start()
            wait_until(lambda: PUBLIC_VIP in lb1.addresses() and PRIVATE_VIP in lb1_int.addresses(), 10,
                       what="LB1 master")
            print(f"   {state()}")
            print(f"   client -> {PUBLIC_VIP}: {'answers' if client.ping(PUBLIC_VIP) else 'NO ANSWER'}")

            print("== LB1 crashes (SIGKILL; its VIPs vanish with it)")

            def crash() -> None:
                peers[0].kill()
                peers[0].remove_vips()
                lb1.netns.ip("addr", "del", f"{PRIVATE_VIP}/32", "dev", "eth1")

            gap = ping_gap(client, crash, 5.0)
            print(f"   {state()}   (pings lost for {gap:.2f} s: the protocol waits 3 adverts + skew)")

            print("== LB1 comes back and takes over again (priority 100 > 99)")
            peers[0].start()
            wait_until(lambda: PUBLIC_VIP in lb1.addresses(), 10, what="LB1 master again")
            print(f"   {state()}")

            print("== LB1's private link goes down: sync group VG1 moves both VIPs")
            gap = ping_gap(client, lambda: private.set_link(lb1_int, False), 5.0)
            print(f"   {state()}   (public pings lost for {gap:.2f} s)")
            private.set_link(lb1_int, True)
            wait_until(lambda: PUBLIC_VIP in lb1.addresses(), 10, what="LB1 master again")
            print(f"   link back: {state()}")

            print("== LB1 stops cleanly (SIGTERM): it keeps the VIPs until LB2 has announced itself")
            gap = ping_gap(client, peers[0].stop, 3.0)
            print(f"   {state()}   (pings lost for {gap:.2f} s)")
        except LabError as exc:
            print(f"main job failed: {exc}", file=sys.stderr)
            for peer in peers:
                print(f"--- {peer!r}\n{peer.log()[-3000:]}", file=sys.stderr)
            return 1
        finally:
            for peer in peers:
                peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
