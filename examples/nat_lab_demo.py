"""The main job: the guide's NAT topology on this machine, traffic through the VIP, and a failover.

Builds the lab (`pykeepalived lab up nat` does the same from the shell): a
client on 203.0.113.0/24, two LVS routers running pykeepalived with public and
private VIPs, three nginx real servers on 10.11.12.0/24 behind them. Sends
requests through the public VIP (the nftables data plane balances them round
robin), shows the master's `pykeepalived status`, kills the master while the
client keeps asking every 50 ms, and shows the traffic continuing through the
backup. Everything is removed at the end.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

from pykeepalived.lab import LabError, unique_prefix
from pykeepalived.lab.lvs_lab import LvsLab

VIP = "203.0.113.10"


def served_by(lab: LvsLab, timeout_s: float = 1.0) -> str:
    return lab.client_get(f"http://{VIP}/whoami", timeout_s).split()[0]


def main() -> int:
    lab = LvsLab("nat", prefix=unique_prefix("pkmain"), name=f"pk-main-{os.getpid()}")
    try:
        lab.up()
        print(f"== NAT lab up: client {lab.client.netns.name}, master {lab.which_router_is_master()}")
        names = [served_by(lab) for _ in range(9)]
        print(f"== 9 requests to http://{VIP}/ through the VIP: {' '.join(names)}")
        print("== pykeepalived status on router1 (the master):")
        print(lab.status_text("router1"))
        print("== killing router1 (SIGKILL, links down) while the client asks every 50 ms")
        lost_since: float | None = None
        longest = 0.0
        answered: Counter[str] = Counter()
        start = time.monotonic()
        killed = False
        while time.monotonic() - start < 8.0:
            if not killed and time.monotonic() - start > 1.0:
                lab.kill_router("router1")
                killed = True
            try:
                answered[served_by(lab, 0.3)] += 1
                if lost_since is not None:
                    longest = max(longest, time.monotonic() - lost_since)
                lost_since = None
            except LabError:
                lost_since = lost_since if lost_since is not None else time.monotonic()
            time.sleep(0.05)
        print(f"== the VIPs are now on {lab.which_router_is_master()}; longest gap without answers "
              f"{longest:.2f} s; answers by server during the run: {dict(sorted(answered.items()))}")
        names = [served_by(lab) for _ in range(6)]
        print(f"== 6 requests through router2: {' '.join(names)}")
        ok = sorted(names) == ["rs1", "rs1", "rs2", "rs2", "rs3", "rs3"]
        print("== traffic continued through the backup" if ok else "== UNEXPECTED distribution after failover")
        return 0 if ok else 1
    except LabError as exc:
        print(f"main job failed: {exc}", file=sys.stderr)
        return 1
    finally:
        lab.close()
        print("== lab removed")


if __name__ == "__main__":
    sys.exit(main())
