"""A control run by hand, not a test: the hole that keeps rr TUN services off the ingress path (docs/dataplane.md).

The first version of TUN from ingress (branch h-tun, not merged) sent an rr
TUN service's packets from ingress and those longer than the tunnel's MTU
to the copy path in table ip, which schedules by flow sets of its own. A
bulk upload's TSO packets cross the lab's veth whole, longer than the MTU,
so the copy path schedules that flow again: rr's counters of the two paths
move apart once one request goes through ingress alone, and the upload's
data goes to another real server than its handshake.

To run it: copy this file into a checkout of h-tun as
tests/netns/test_tun_control.py, and from that checkout
`PYTHONPATH=.:src python -c` a script that runs
`tests.vm.inner_pytest.guest_script("tests/netns/test_tun_control.py", load="ipip",
basetemp="/run/pkvm-ctl", time_scale=5, select="tun")` with `tests.vm.guest.run_in_guest`
and prints its output (the lines starting CONTROL).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.lab.lvs_lab import LabKind, LvsLab
from tests.netns.test_dataplane_lab import REQUEST_TIMEOUT_S, VIP, lab, shared_lab  # noqa: F401

UPLOAD_BYTES = 900_000


def received_bytes(made: LvsLab) -> dict[str, int]:
    return {rs.name: int(rs.host.netns.ip_json("-s", "link", "show", "tunl0")[0]["stats64"]["rx"]["bytes"])
            for rs in made.real_servers}


def test_upload_through_the_rr_vip(lab: LvsLab, tmp_path: Path) -> None:  # noqa: F811 (the imported fixture)
    if lab.kind is not LabKind.TUN:
        pytest.skip("TUN only")
    body = tmp_path / "upload"
    body.write_bytes(b"u" * UPLOAD_BYTES)
    for attempt in range(3):
        small = lab.client_get(f"http://{VIP}/whoami", REQUEST_TIMEOUT_S).split()[0]  # ingress's rr moves on alone
        before = received_bytes(lab)
        proc = lab.client.netns.run(["curl", "-sS", "--fail-with-body", "--max-time", f"{REQUEST_TIMEOUT_S * 4:g}",
                                     "-H", "Expect:", "--data-binary", f"@{body}", f"http://{VIP}/whoami"],
                                    check=False, timeout_s=REQUEST_TIMEOUT_S * 4 + 5.0)
        got = {name: n - before[name] for name, n in received_bytes(lab).items()}
        print(f"CONTROL attempt {attempt}: small GET {small}; upload curl exit {proc.returncode} "
              f"out={proc.stdout.strip()!r} err={proc.stderr.strip()!r} tunl0 bytes {got}")
