"""The HTTP API's cost on the daemon: CPU and memory with a scrape of /metrics every second and an event
stream (the page) open, against the same daemon without the API.

A lab of three namespaces: r1 runs pykeepalived (the parent with its VRRP and checker children) as VRRP
master with one virtual server of two real servers on c (TCP_CHECK every second, `--dataplane none`:
checkers only, so the figure is the daemon's and not the data plane's); r2 runs pykeepalived as backup.
Each run starts r1's daemon afresh, lets it settle, then measures for `--seconds`:

- `none`: no API;
- `api`: `--api unix:SOCK`; a client (in the root namespace) GETs /metrics every second and holds
  /api/v1/stream open, as Prometheus and an open page would.

Measured from /proc over the daemon's whole process tree (parent and every descendant): CPU seconds
(utime + stime) during the window and as a percentage of one core, and the resident memory (VmRSS,
summed; the parent's alone too) at the end. Prints one JSON document on stdout.

    PYTHONPATH=$PWD/src .venv/bin/python bench/api.py [--seconds 60] [--settle 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pykeepalived.lab import Lan, VrrpSettings, unique_prefix  # noqa: E402
from pykeepalived.lab.peers import PyKeepalivedPeer, render_keepalived_conf  # noqa: E402
from pykeepalived.lab.topology import Host  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
VIP = "192.0.2.100/24"


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, cpu seconds) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree(root: int) -> list[int]:
    """The process and all its descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents[int(entry)] = st[0]
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def cpu_s(pids: list[int]) -> float:
    return sum(st[1] for pid in pids if (st := _stat(pid)) is not None)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _unix_get(path: str, target: str) -> tuple[float, int]:
    """(seconds, body bytes) of one GET over the unix socket."""
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {target}: {data[:200]!r}")
    return time.monotonic() - start, len(data)


def _hold_stream(path: str, stop: threading.Event, events: list[int]) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1)
        s.connect(path)
        s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: bench\r\n\r\n")
        while not stop.is_set():
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            events[0] += chunk.count(b"data: ")


def _config(r1: Host, c: Host) -> str:
    settings = [VrrpSettings(vrid=51, priority=150, vips=[ip_interface(VIP)], version=3, advert_int_s=1.0)]
    vs = ["", f"virtual_server {VIP.split('/')[0]} 80 {{", "    delay_loop 1", "    lb_algo rr", "    lb_kind NAT",
          "    protocol TCP"]
    for port in (8080, 8081):
        vs += [f"    real_server {c.ipv4.ip} {port} {{", "        TCP_CHECK {", "            connect_timeout 1",
               "        }", "    }"]
    vs.append("}")
    return render_keepalived_conf(r1, settings) + "\n".join(vs) + "\n"


def run_once(lab: dict[str, Any], work: Path, with_api: bool, seconds: float, settle: float) -> dict[str, Any]:
    r1: Host = lab["r1"]
    sock = work / "api.sock"
    argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-f", str(work / "r1.conf"),
            "-p", str(work / "r1.pid"), "-r", str(work / "r1-vrrp.pid"), "-c", str(work / "r1-check.pid"),
            "--dataplane", "none", *(["--api", f"unix:{sock}"] if with_api else [])]
    log = open(work / f"r1-{'api' if with_api else 'none'}.log", "wb")
    proc = r1.netns.popen(argv, stdout=log, stderr=log)
    stop = threading.Event()
    events = [0]
    scrapes: list[float] = []
    try:
        time.sleep(settle)
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited: {Path(log.name).read_text()[-2000:]}")
        holder = None
        if with_api:
            holder = threading.Thread(target=_hold_stream, args=(str(sock), stop, events), daemon=True)
            holder.start()
        pids = tree(proc.pid)
        before, start = cpu_s(pids), time.monotonic()
        size = 0
        next_scrape = start
        while time.monotonic() - start < seconds:
            if with_api and time.monotonic() >= next_scrape:
                took, size = _unix_get(str(sock), "/metrics")
                scrapes.append(took)
                next_scrape += 1.0
            time.sleep(0.05)
        pids = tree(proc.pid)
        used, elapsed = cpu_s(pids) - before, time.monotonic() - start
        out: dict[str, Any] = {
            "processes": len(pids),
            "cpu_s": round(used, 3),
            "cpu_percent_of_one_core": round(100 * used / elapsed, 2),
            "rss_kib_total": sum(rss_kib(pid) for pid in pids),
            "rss_kib_parent": rss_kib(proc.pid),
        }
        if with_api:
            out |= {"scrapes": len(scrapes), "scrape_ms_median": round(1000 * statistics.median(scrapes), 2),
                    "metrics_bytes": size, "stream_events": events[0]}
        return out
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(15)
        except Exception:
            proc.kill()
            proc.wait(5)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, Lan(unique_prefix("bapi")) as lan:
        work = Path(tmp)
        r1, r2, c = lan.add_host("r1", 11), lan.add_host("r2", 12), lan.add_host("c", 50)
        (work / "r1.conf").write_text(_config(r1, c))
        servers = [c.netns.popen([sys.executable, "-m", "http.server", "-b", str(c.ipv4.ip), str(port)])
                   for port in (8080, 8081)]
        backup = PyKeepalivedPeer(r2, [VrrpSettings(vrid=51, priority=100, vips=[ip_interface(VIP)], version=3,
                                                    advert_int_s=1.0)], work)
        try:
            backup.start()
            lab = {"r1": r1}
            none = run_once(lab, work, False, args.seconds, args.settle)
            api = run_once(lab, work, True, args.seconds, args.settle)
        finally:
            backup.close()
            for server in servers:
                server.terminate()
                server.wait(5)
    result = {
        "seconds": args.seconds, "cpus": os.cpu_count(), "none": none, "api": api,
        "api_minus_none": {"cpu_percent_of_one_core": round(api["cpu_percent_of_one_core"]
                                                            - none["cpu_percent_of_one_core"], 2),
                           "rss_kib_total": api["rss_kib_total"] - none["rss_kib_total"],
                           "rss_kib_parent": api["rss_kib_parent"] - none["rss_kib_parent"]},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
