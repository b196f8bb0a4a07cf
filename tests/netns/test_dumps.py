"""The dumps operators and exporters read, compared with keepalived 2.2.7's for the same config (issue 14).

keepalived 2.2.7 and pykeepalived run side by side, each alone on a LAN of
its own (so that both become master of everything), on one configuration: a
sync group of two instances, a third instance with a track_script, simple
password authentication and a notify script, VIPs with and without a device,
a scope and a prefix, an excluded VIP. Each gets the DATA, STATS and JSON
signals with the numbers `keepalived --signum=NAME` prints, sent to the pid
in its pid file (how mehdy/keepalived-exporter signals); each writes into a
directory of the test's own through $TMPDIR, which keepalived 2.2.7 honours
for its dump files (lib/utils.c set_tmp_dir) and so do we, so that nothing
touches /tmp and parallel runs do not collide.

Then, key by key:
- keepalived.json: the same key lists in the same order for every instance,
  the same JSON types (an integer stays an integer), the same values but for
  `last_transition` (a time) and the counters (whose types must still agree);
- keepalived.stats: the same lines once every number is replaced by N;
- keepalived.data: the VRRP Topology, Sync groups and Scripts sections line for
  line once every number is replaced by N (addresses, times, fds and counters
  differ only in their digits); our global_defs lines are a subsequence of
  keepalived's; the sections we leave out are exactly DATA_SECTIONS_LEFT_OUT;
- every file 0600, at keepalived's names.
The exporters' own parsing rules are applied in test_dumps_exporters.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.keepalived, needs_root,
              pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived not installed")]

INSTANCES = ("VI_1", "VI_2", "VI_3")
FILES = ("keepalived.data", "keepalived.stats", "keepalived.json")
# keepalived's own internals, which no exporter reads and we do not have (docs/dumps.md says why)
DATA_SECTIONS_LEFT_OUT = {"VRRP Sockpool", "Interfaces"}

CONFIG = """\
global_defs {
  router_id dumps-lab
  enable_script_security
  script_user root
}
vrrp_script chk {
  script "/bin/true"
  interval 1
  weight 10
}
vrrp_sync_group G1 {
  group {
    VI_1
    VI_2
  }
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101/32 dev eth0 scope host
  }
  virtual_ipaddress_excluded {
    192.0.2.102/24
  }
}
vrrp_instance VI_2 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.110/24
  }
}
vrrp_instance VI_3 {
  state BACKUP
  interface eth0
  virtual_router_id 53
  priority 100
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    192.0.2.120/24
  }
  track_script {
    chk
  }
  notify_master "/bin/true master"
}
"""


@dataclass
class Run:
    """One daemon's run: its directory (dumps, pid file, log) and what it wrote."""

    name: str
    dir: Path
    files: dict[str, str]
    modes: dict[str, int]

    def json(self) -> list[dict[str, dict[str, object]]]:
        doc: list[dict[str, dict[str, object]]] = json.loads(self.files["keepalived.json"])
        return doc


def signum(name: str) -> int:
    """The number `keepalived --signum=NAME` prints (what mehdy/keepalived-exporter sends)."""
    out = subprocess.run(["keepalived", f"--signum={name}"], capture_output=True, text=True, timeout=10, check=True)
    return int(out.stdout.strip())


def _run_daemon(host: Host, argv: list[str], workdir: Path, name: str) -> Run:
    """Start, wait for three masters, signal DATA/STATS/JSON through the pid file, read the dumps, stop."""
    dumps = workdir / "dumps"
    dumps.mkdir()
    conf = workdir / "keepalived.conf"
    conf.write_text(CONFIG)
    pid_file = workdir / "keepalived.pid"
    log_path = workdir / "daemon.log"
    full = [*argv, "-n", "-l", "-D", "--vrrp", "-f", str(conf), "-p", str(pid_file),
            "-r", str(workdir / "vrrp.pid")]
    env = dict(os.environ, TMPDIR=str(dumps))
    with open(log_path, "ab") as log:
        proc = host.netns.popen(full, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        def masters() -> bool:
            text = log_path.read_text(errors="replace")
            return all(f"({i}) Entering MASTER STATE" in text for i in INSTANCES) and pid_file.exists()

        wait_until(masters, 15.0, what=f"{name}: three masters")
        time.sleep(0.5)  # the first adverts counted on both sides
        pid = int(pid_file.read_text().removesuffix("\n"))  # as the exporter reads it
        for sig in ("DATA", "STATS", "JSON"):
            os.kill(pid, signum(sig))
        wait_until(lambda: all((dumps / f).exists() and (dumps / f).stat().st_size > 0 for f in FILES), 10.0,
                   what=f"{name}: dumps in {dumps}")
        time.sleep(0.3)  # written whole (ours are renamed into place; keepalived's are written in place)
        files = {f: (dumps / f).read_text() for f in FILES}
        modes = {f: stat.S_IMODE((dumps / f).stat().st_mode) for f in FILES}
        return Run(name, dumps, files, modes)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        print(f"===== {name} =====\n{log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Run]]:
    """keepalived's and our dumps for CONFIG, each daemon on a LAN of its own."""
    base = tmp_path_factory.mktemp("dumps")
    with Lan(unique_prefix("dka")) as lan_ka, Lan(unique_prefix("dpy")) as lan_py:
        ka_host = lan_ka.add_host("r1", 11)
        py_host = lan_py.add_host("r1", 12)
        (base / "ka").mkdir()
        (base / "py").mkdir()
        ka = _run_daemon(ka_host, ["keepalived"], base / "ka", "keepalived")
        py = _run_daemon(py_host, [sys.executable, "-m", "pykeepalived"], base / "py", "pykeepalived")
        yield ka, py


def numbers_as_n(text: str) -> str:
    return re.sub(r"\d+", "N", text)


def sections(text: str) -> dict[str, list[str]]:
    """The data dump's `------< NAME >------` sections."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = re.fullmatch(r"------< (.+) >------", line)
        if m:
            current = out.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
    return out


# ---------------------------------------------------------------------------------------------- JSON
def test_json_keys_types_and_values_as_keepalived(runs: tuple[Run, Run]) -> None:
    ka, py = runs
    ka_doc, py_doc = ka.json(), py.json()
    assert [e["data"]["iname"] for e in py_doc] == [e["data"]["iname"] for e in ka_doc] == list(INSTANCES)
    for ka_entry, py_entry in zip(ka_doc, py_doc, strict=True):
        assert list(py_entry) == list(ka_entry) == ["data", "stats"]
        for part in ("data", "stats"):
            ka_obj, py_obj = ka_entry[part], py_entry[part]
            assert isinstance(ka_obj, dict) and isinstance(py_obj, dict)
            assert list(py_obj) == list(ka_obj), (part, ka_obj, py_obj)
            for key, ka_value in ka_obj.items():
                py_value = py_obj[key]
                assert type(py_value) is type(ka_value), (part, key, ka_value, py_value)
                if part == "data" and key != "last_transition":
                    assert py_value == ka_value, (key, ka_value, py_value)
    # the forms Go decoders depend on, stated once more
    vi1 = py_doc[0]["data"]
    assert vi1["adver_int"] == 1 and isinstance(vi1["adver_int"], int)
    assert isinstance(vi1["last_transition"], float)
    assert vi1["vips"] == ["192.0.2.100/24 dev eth0 scope global set", "192.0.2.101 dev eth0 scope host set"]
    assert '"last_transition":' in py.files["keepalived.json"]
    assert re.search(r'"last_transition":\d+\.\d{6},', py.files["keepalived.json"])


# ---------------------------------------------------------------------------------------------- stats
def test_stats_file_layout_as_keepalived(runs: tuple[Run, Run]) -> None:
    ka, py = runs
    assert numbers_as_n(py.files["keepalived.stats"]).splitlines() == \
        numbers_as_n(ka.files["keepalived.stats"]).splitlines()


# ---------------------------------------------------------------------------------------------- data
def test_data_dump_sections_and_lines_as_keepalived(runs: tuple[Run, Run]) -> None:
    ka, py = runs
    ka_sections, py_sections = sections(ka.files["keepalived.data"]), sections(py.files["keepalived.data"])
    assert list(py_sections) == [s for s in ka_sections if s not in DATA_SECTIONS_LEFT_OUT]
    assert set(ka_sections) - set(py_sections) == DATA_SECTIONS_LEFT_OUT
    for name in ("VRRP Topology", "VRRP Sync groups", "VRRP Scripts"):
        assert [numbers_as_n(line) for line in py_sections[name]] == \
            [numbers_as_n(line) for line in ka_sections[name]], name
    # our global_defs lines: each as keepalived writes it, in its order (we leave out tunables we lack)
    ka_globals = [numbers_as_n(line) for line in ka_sections["Global definitions"]]
    position = 0
    for line in py_sections["Global definitions"]:
        assert numbers_as_n(line) in ka_globals[position:], (line, ka_sections["Global definitions"])
        position = ka_globals.index(numbers_as_n(line), position) + 1
    assert len(py_sections["Global definitions"]) >= 15


def test_dump_files_are_private_and_named_as_keepalived(runs: tuple[Run, Run]) -> None:
    ka, py = runs
    assert ka.modes == py.modes == {f: 0o600 for f in FILES}
    assert all((py.dir / f).stat().st_uid == 0 for f in FILES)
