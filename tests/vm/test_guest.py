"""The qemu guest harness: Debian's kernel boots, scripts run as root, IPVS and real keepalived's checker work.

One boot per test (each costs ~6-20 s under software emulation). These tests
pin down what later IPVS tests rely on: exit codes and output come back intact,
the shared directory is read-write at the same path, ``modprobe ip_vs`` just
works, namespaces and veth pairs work, keepalived 2.2.7's checker fills the
IPVS table, and a guest that outlives its timeout is killed.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from tests.vm.guest import GuestError, GuestImage, run_in_guest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

VIP = "192.0.2.10"
LIVE_RS = "192.0.2.20"
DEAD_RS = "192.0.2.21"


def _qemu_children() -> list[int]:
    """Pids of qemu processes whose parent is this test process."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat_file.read_text().rpartition(")")
        except OSError:
            continue  # the process exited meanwhile
        comm, parent = head.partition("(")[2], int(tail.split()[1])
        if parent == os.getpid() and comm.startswith("qemu-system"):
            found.append(int(stat_file.parent.name))
    return found


def test_command_exit_code_and_output_come_back(guest_image: GuestImage, tmp_path: Path) -> None:
    (tmp_path / "from-host.txt").write_text("written by the host\n")
    script = """
        pwd
        cat from-host.txt
        echo "written by the guest" > from-guest.txt
        echo "to stderr" >&2
        echo "host=$(hostname) kernel=$(uname -r) clock=$(date +%s)"
        exit 7
    """
    result = run_in_guest(textwrap.dedent(script), share=tmp_path, image=guest_image, timeout_s=120)

    assert result.returncode == 7
    lines = result.output.splitlines()
    assert lines[:3] == [str(tmp_path), "written by the host", "to stderr"]
    facts = dict(item.split("=", 1) for item in lines[3].split())
    assert facts["host"] == "pkvm-guest"
    assert facts["kernel"] == guest_image.kernel_version
    assert abs(int(facts["clock"]) - time.time()) < 120
    assert (tmp_path / "from-guest.txt").read_text() == "written by the guest\n"
    assert 0 < result.boot_s < result.elapsed_s


def test_modprobe_ip_vs_and_ipvsadm_fill_the_table(guest_image: GuestImage) -> None:
    script = f"""
        set -e
        modprobe ip_vs
        ipvsadm -A -t {VIP}:80 -s rr
        ipvsadm -a -t {VIP}:80 -r {LIVE_RS}:80 -m
        ipvsadm -Sn
        lsmod | cut -d' ' -f1 | grep '^ip_vs'
    """
    result = run_in_guest(textwrap.dedent(script), image=guest_image, timeout_s=120)

    assert result.returncode == 0, result.output
    assert f"-A -t {VIP}:80 -s rr" in result.output
    assert f"-a -t {VIP}:80 -r {LIVE_RS}:80 -m -w 1" in result.output
    assert {"ip_vs", "ip_vs_rr"} <= set(result.output.split())


def test_network_namespaces_and_veth_work(guest_image: GuestImage) -> None:
    script = """
        set -e
        ip netns add left
        ip netns add right
        ip link add veth-l netns left type veth peer name veth-r netns right
        ip -n left addr add 198.51.100.1/24 dev veth-l
        ip -n right addr add 198.51.100.2/24 dev veth-r
        ip -n left link set veth-l up
        ip -n right link set veth-r up
        ip netns exec left ping -c 2 -W 2 198.51.100.2
        ip netns list
    """
    result = run_in_guest(textwrap.dedent(script), image=guest_image, timeout_s=120)

    assert result.returncode == 0, result.output
    assert "2 received" in result.output
    assert {"left", "right"} <= set(result.output.split())


KEEPALIVED_CONF = f"""
global_defs {{
    router_id pkvm_checker
}}

virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP

    real_server {LIVE_RS} 80 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server {DEAD_RS} 80 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""

# The real servers live in namespace "rs" behind a veth pair: LIVE_RS has a listener, DEAD_RS nothing.
KEEPALIVED_SCRIPT = f"""
set -e
ip netns add rs
ip link add veth-lb type veth peer name veth-rs netns rs
ip addr add 192.0.2.1/24 dev veth-lb
ip link set veth-lb up
ip -n rs addr add {LIVE_RS}/24 dev veth-rs
ip -n rs addr add {DEAD_RS}/24 dev veth-rs
ip -n rs link set veth-rs up
ip -n rs link set lo up
ip netns exec rs python3 -m http.server --bind {LIVE_RS} 80 >/dev/null 2>&1 &
server=$!
for i in $(seq 100); do ip netns exec rs ss -ltnH | grep -q '{LIVE_RS}:80' && break; sleep 0.2; done

D=$PWD
keepalived -n -l -D -C -f $D/keepalived.conf -p $D/keepalived.pid -c $D/checkers.pid >$D/keepalived.log 2>&1 &
keepalived=$!
set +e
for i in $(seq 60); do
    ipvsadm -Sn > $D/ipvs.txt
    grep -q '{LIVE_RS}:80' $D/ipvs.txt && ! grep -q '{DEAD_RS}:80' $D/ipvs.txt && break
    sleep 0.5
done
kill -TERM $keepalived
for i in $(seq 50); do kill -0 $keepalived 2>/dev/null || break; sleep 0.2; done
kill -0 $keepalived 2>/dev/null && echo "keepalived still running"
wait $keepalived
echo "keepalived exit $?"
ipvsadm -Sn > $D/ipvs-after.txt
kill $server
"""


def test_real_keepalived_checker_drops_the_dead_real_server(guest_image: GuestImage, tmp_path: Path) -> None:
    (tmp_path / "keepalived.conf").write_text(KEEPALIVED_CONF)

    result = run_in_guest(KEEPALIVED_SCRIPT, share=tmp_path, image=guest_image, timeout_s=180)

    log = (tmp_path / "keepalived.log").read_text()
    assert result.returncode == 0, result.output + log
    table = (tmp_path / "ipvs.txt").read_text()
    assert f"-A -t {VIP}:80 -s rr" in table, log
    assert f"-a -t {VIP}:80 -r {LIVE_RS}:80 -m -w 1" in table, log
    assert DEAD_RS not in table, log
    removed = [line for line in log.splitlines() if "Removing service" in line and DEAD_RS in line]
    assert removed, log
    assert "keepalived exit 0" in result.output
    assert (tmp_path / "ipvs-after.txt").read_text().strip() == "", "keepalived left IPVS rows behind"


def test_guest_outliving_its_timeout_is_killed(guest_image: GuestImage) -> None:
    started = time.monotonic()

    with pytest.raises(GuestError, match="timed out after 20 s"):
        run_in_guest("sleep 600", image=guest_image, timeout_s=20)

    assert time.monotonic() - started < 40
    assert _qemu_children() == []
