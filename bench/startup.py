"""Start-up: `-t` time per file and exec-to-first-advert time, pykeepalived against keepalived 2.2.7.

What is measured, for both implementations on the same files in the same namespace:

- `config_test`: wall time of `PROG -t -f FILE` from fork to exit, run N times
  (median and minimum reported), for a typical VRRP pair's file, the RHEL
  guide's NAT and DR load balancers (examples/), and the compat corpus' base
  file. The namespace has the interfaces the files name, so that both accept.
- `first_advert`: time from starting the daemon (`PROG -n -l -f FILE`, the
  parent and its VRRP child as operators run it, and `-P`, VRRP in the one
  process) to the first VRRP advert from its address, seen by a raw IP
  protocol 112 socket on another host of the segment. The instance is `state
  MASTER` (keepalived 2.2.7 still waits for its master-down timer, 3 x advert_int + skew,
  about 3.6 s here, before its first advert); each run is stopped with SIGTERM.

Both programs are started the same way (`ip netns exec`, whose cost is in both
figures). Our bytecode is compiled once first (an installed package has its
.pyc files; this environment may set PYTHONDONTWRITEBYTECODE, which the
children here do not inherit). On a machine shared with other work the
medians move by a few milliseconds between runs; compare figures of one run.

Run (root, keepalived installed):
    PYTHONPATH=$PWD/src .venv/bin/python bench/startup.py [--runs 21] [--advert-runs 5]
Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pykeepalived.lab import Lan, unique_prefix
from pykeepalived.lab.topology import Host

ROOT = Path(__file__).resolve().parents[1]
KEEPALIVED = "/usr/sbin/keepalived"
OURS = [sys.executable, "-m", "pykeepalived"]

TYPICAL = """global_defs {
    router_id lb1
    enable_script_security
}
vrrp_script chk_haproxy {
    script "/bin/true"
    interval 2
    weight 2
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 101
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        192.0.2.100/24 dev eth0
    }
    track_script {
        chk_haproxy
    }
}
"""

ADVERT = """global_defs {
    router_id bench
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 77
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.200/24
    }
}
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def compile_bytecode() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "pykeepalived")],
                   env=child_env(), check=True, capture_output=True)


def time_runs(*argvs: list[str], runs: int) -> list[dict[str, float | int]]:
    """Each command `runs` times, interleaved (a burst of load on a shared machine hits all of them alike)."""
    times: list[list[float]] = [[] for _ in argvs]
    codes = [0] * len(argvs)
    for _ in range(runs):
        for i, argv in enumerate(argvs):
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, env=child_env(), timeout=60, check=False)
            times[i].append(time.perf_counter() - start)
            codes[i] = done.returncode
    return [{"median_s": round(statistics.median(t), 4), "min_s": round(min(t), 4), "exit": code}
            for t, code in zip(times, codes)]


def config_test(host: Host, files: dict[str, Path], runs: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, path in files.items():
        ours, theirs = time_runs(host.netns.argv([*OURS, "-t", "-f", str(path)]),
                                 host.netns.argv([KEEPALIVED, "-t", "-f", str(path)]), runs=runs)
        rows.append({"file": name, "lines": path.read_text().count("\n"), "pykeepalived": ours,
                     "keepalived": theirs,
                     "ratio_median": round(float(ours["median_s"]) / max(float(theirs["median_s"]), 1e-6), 1)})
    return rows


def _listen(observer: Host) -> socket.socket:
    """A raw IP protocol 112 socket in the observer's namespace (setns for the socket call only)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{observer.netns.name}", os.O_RDONLY)
    try:
        if libc.setns(target, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns")
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        mreq = socket.inet_aton("224.0.0.18") + socket.inet_aton(str(observer.ipv4.ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    finally:
        libc.setns(own, 0x40000000)
        os.close(own)
        os.close(target)
    return sock


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return


def first_advert(router: Host, observer: Host, argv: list[str], timeout_s: float = 10.0) -> float | None:
    """Seconds from starting `argv` in the router's namespace to its first advert; None if none came."""
    import select

    sock = _listen(observer)
    try:
        _drain(sock)
        start = time.perf_counter()
        proc = router.netns.popen(argv, env=child_env())
        seen = None
        try:
            deadline = start + timeout_s
            while seen is None and time.perf_counter() < deadline:
                ready, _, _ = select.select([sock], [], [], 0.05)
                if not ready:
                    continue
                data, (source, _) = sock.recvfrom(2048)
                if source == str(router.ipv4.ip):
                    seen = time.perf_counter() - start
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return seen
    finally:
        sock.close()


def adverts(lan: Lan, router: Host, observer: Host, conf: Path, workdir: Path, runs: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    pid_args = ["-p", str(workdir / "ka.pid"), "-r", str(workdir / "ka_vrrp.pid"),
                "-c", str(workdir / "ka_chk.pid")]
    for mode, extra in (("parent and VRRP child", []), ("-P (one process)", ["-P"])):
        row: dict[str, object] = {"mode": mode}
        for name, prog in (("pykeepalived", OURS), ("keepalived", [KEEPALIVED])):
            seen = []
            for _ in range(runs):
                got = first_advert(router, observer, [*prog, "-n", "-l", "-G", "-f", str(conf), *pid_args, *extra])
                if got is not None:
                    seen.append(got)
                time.sleep(0.3)
            row[name] = {"median_s": round(statistics.median(seen), 4) if seen else None,
                         "min_s": round(min(seen), 4) if seen else None, "runs": runs, "seen": len(seen)}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each -t (median reported)")
    parser.add_argument("--advert-runs", type=int, default=5, help="daemon starts of each kind")
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="pyka-startup-") as tmp, Lan(unique_prefix("st")) as lan:
        workdir = Path(tmp)
        router = lan.add_host("r1", 11)
        observer = lan.add_host("obs", 12)
        typical = workdir / "typical.conf"
        typical.write_text(TYPICAL)
        advert_conf = workdir / "advert.conf"
        advert_conf.write_text(ADVERT)
        files = {"typical VRRP (typical.conf)": typical,
                 "examples/rhel-nat-lb1.conf": ROOT / "examples" / "rhel-nat-lb1.conf",
                 "examples/rhel-dr-lb1.conf": ROOT / "examples" / "rhel-dr-lb1.conf",
                 "tests/compat/valid_base.conf": ROOT / "tests" / "compat" / "valid_base.conf"}
        subprocess.run(router.netns.argv([*OURS, "-t", "-f", str(typical)]), env=child_env(),
                       capture_output=True, check=False)  # warm the page cache and bytecode
        python_pass, netns_true = time_runs(router.netns.argv([sys.executable, "-c", "pass"]),
                                            router.netns.argv(["/bin/true"]), runs=args.runs)
        startup = {"python_c_pass_s": python_pass, "ip_netns_exec_true_s": netns_true,
                   "load_average_1min": os.getloadavg()[0]}
        result = {"benchmark": "startup", "runs": args.runs, "baseline": startup,
                  "config_test": config_test(router, files, args.runs),
                  "first_advert": adverts(lan, router, observer, advert_conf, workdir, args.advert_runs)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
