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
- keepalived.data: the VRRP Topology, Sockpool, Sync groups and Scripts sections
  line for line once every number is replaced by N (addresses, times, fds and counters
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

from .router_fixtures import start_logged, stop_group
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.keepalived, needs_root,
              pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived not installed")]

INSTANCES = ("VI_1", "VI_2", "VI_3")
FILES = ("keepalived.data", "keepalived.stats", "keepalived.json")
# the kernel interface table as keepalived keeps it, which no exporter reads (docs/dumps.md says why)
DATA_SECTIONS_LEFT_OUT = {"Interfaces"}

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
    proc = start_logged(host, full, log_path, env=env)
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
        stop_group(proc)
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
    for name in ("VRRP Topology", "VRRP Sockpool", "VRRP Sync groups", "VRRP Scripts"):
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


# ---------------------------------------------------------------------------------------------- exporters
# The two popular Prometheus exporters' parsing rules, re-expressed in Python from their Go source (read, not
# copied): what each extracts from keepalived's files must be extracted from ours, metric for metric.
#
# - mehdy/keepalived-exporter at commit 5aedbfb6a6ca2f0bcea65ceb8711093d45363471
#   (internal/collector/parser.go ParseVRRPData, ParseVRRPScript, ParseStats, ParseVIP; collector.go Collect;
#   internal/types/host: the pid from --ka.pid-path, default /var/run/keepalived.pid, read and trimmed of its
#   newline, signalled with `keepalived --signum=DATA|STATS|JSON`; files /tmp/keepalived.{data,stats,json}).
# - gen2brain/keepalived_exporter at commit 53a0c0aeda23f518a0da1de4d4d665c66694368e
#   (collector/collector.go: SIGJSON = 32 + 4 sent to the first `ps` process whose argv[0] base name is
#   `keepalived`; /tmp/keepalived.json decoded into typed Go structs).
# Go's encoding/json fails the whole decode when a number does not fit the field (1.0 into an int), which the
# typed checks below reproduce; unknown keys are ignored, missing ones read as zero.

GoType = type[int] | type[float] | type[str] | tuple[type[str]]


def go_decode(obj: dict[str, object], fields: dict[str, GoType]) -> dict[str, object]:
    """encoding/json into a struct of `fields`: a type mismatch is an error, a missing key the zero value."""
    out: dict[str, object] = {}
    for key, kind in fields.items():
        value = obj.get(key)
        if value is None:
            out[key] = [] if isinstance(kind, tuple) else kind()
        elif isinstance(kind, tuple):
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), (key, value)
            out[key] = value
        elif kind is int:
            assert isinstance(value, int) and not isinstance(value, bool), f"json: cannot unmarshal {value!r} into int"
            out[key] = value
        elif kind is float:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
            out[key] = float(value)
        else:
            assert isinstance(value, str), (key, value)
            out[key] = value
    return out


STATS_FIELDS: dict[str, GoType] = {k: int for k in (
    "advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err", "advert_interval_err",
    "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype", "authtype_mismatch", "auth_failure",
    "pri_zero_rcvd", "pri_zero_sent")}
GEN2BRAIN_DATA: dict[str, GoType] = {"iname": str, "ifp_ifname": str, "last_transition": float, "vrid": int,
                                     "state": int, "wantstate": int}
MEHDY_DATA: dict[str, GoType] = {"iname": str, "state": int, "wantstate": int, "ifp_ifname": str,
                                 "garp_delay": int, "vrid": int, "vips": (str,), "evips": (str,)}
STATES = ["INIT", "BACKUP", "MASTER", "FAULT"]
Metric = tuple[str, tuple[str, ...]]  # name and label values (values of the metric itself may differ)


def gen2brain_metrics(json_text: str) -> set[Metric]:
    out: set[Metric] = set()
    for entry in json.loads(json_text):
        d = go_decode(entry["data"], GEN2BRAIN_DATA)
        st = go_decode(entry["stats"], STATS_FIELDS)
        state = STATES[d["state"]] if d["state"] in range(4) else ""  # type: ignore[index,operator]
        labels = (str(d["iname"]), str(d["ifp_ifname"]), str(d["vrid"]), state)
        out |= {(f"keepalived_vrrp_{k}", labels) for k in st}
    return out


def mehdy_parse_vip(vip: str) -> tuple[str, str] | None:
    args = vip.split(" ")
    return (args[0], args[2]) if len(args) >= 3 else None


def mehdy_metrics_from(vrrps: list[tuple[dict[str, object], dict[str, object]]],
                       scripts: list[dict[str, str]]) -> set[Metric]:
    out: set[Metric] = {("keepalived_up", ())}
    for data, stats in vrrps:
        base = (str(data["iname"]), str(data["ifp_ifname"]), str(data["vrid"]))
        out |= {(f"stat:{k}", base) for k in stats}
        out.add(("keepalived_gratuitous_arp_delay_total", base))
        for vip in data["vips"]:  # type: ignore[attr-defined]
            parsed = mehdy_parse_vip(vip)
            if parsed:
                out.add(("keepalived_vrrp_state", (str(data["iname"]), parsed[1], str(data["vrid"]), parsed[0])))
        for vip in data["evips"]:  # type: ignore[attr-defined]
            parsed = mehdy_parse_vip(vip)
            if parsed:
                out.add(("keepalived_vrrp_excluded_state",
                         (str(data["iname"]), parsed[1], str(data["vrid"]), parsed[0])))
        if not data["vips"]:
            out.add(("keepalived_vrrp_state", (*base, "")))
    for script in scripts:
        assert script["Status"] in ("BAD", "GOOD"), script
        assert script["State"] in ("idle", "running", "requested termination", "forcing termination"), script
        out.add(("keepalived_script_status", (script["Name"],)))
        out.add(("keepalived_script_state", (script["Name"],)))
    return out


def mehdy_parse_data(text: str) -> dict[str, dict[str, object]]:
    """ParseVRRPData: ` VRRP Instance = X` blocks, `key = value` / `key : value` lines, VIP lists below them."""
    data: dict[str, dict[str, object]] = {}
    instance = key = val = ""
    for line in text.split("\n"):
        if line.startswith(" VRRP Instance") and "=" in line:
            instance = line.strip().split("=")[1].strip()
            data[instance] = {"iname": instance, "vips": [], "evips": [], "state": 0, "wantstate": 0,
                              "ifp_ifname": "", "garp_delay": 0, "vrid": 0}
        elif line.startswith("   ") and instance:
            if line.startswith("     "):
                val = line.strip()
            else:
                if "=" in line:
                    args = line.strip().split("=")
                elif ":" in line:
                    args = line.strip().split(":")
                else:
                    continue
                key = args[0].strip()
                if key == "Virtual IP":
                    continue
                val = args[1].strip()
            d = data[instance]
            if (key.startswith("Virtual IP (") or key == "Virtual IP") and val:
                d["vips"].append(val)  # type: ignore[attr-defined]
            if key.startswith("Virtual IP Excluded") and val:
                d["evips"].append(val)  # type: ignore[attr-defined]
            if key in ("State", "Wantstate"):
                assert val in STATES, f"unknown {key.lower()} found: {val}"
                d[key.lower()] = STATES.index(val)
            elif key in ("Interface", "Listening device"):
                d["ifp_ifname"] = val
            elif key in ("Gratuitous ARP delay", "Virtual Router ID"):
                assert re.fullmatch(r"[+-]?\d+", val), (key, val)  # strconv.Atoi
                d["garp_delay" if key.startswith("Grat") else "vrid"] = int(val)
        elif line.startswith(" VRRP Version") or line.startswith(" VRRP Script"):
            continue
        else:
            instance = ""
    return data


def mehdy_parse_scripts(text: str) -> list[dict[str, str]]:
    """ParseVRRPScript: ` VRRP Script = X` blocks with `Status` and `State`."""
    scripts: list[dict[str, str]] = []
    script: dict[str, str] = {}
    for line in text.split("\n"):
        if line.startswith(" VRRP Script") and "=" in line:
            if script.get("Name"):
                scripts.append(script)
            script = {"Name": line.strip().split("=")[1].strip()}
        elif line.startswith("   ") and script.get("Name"):
            if "=" not in line:
                continue
            k, v = (p.strip() for p in line.strip().split("=")[:2])
            if k in ("Status", "State"):
                script[k] = v
        elif not line.startswith("    ") and script.get("Name"):
            scripts.append(script)
            script = {}
    if script.get("Name"):
        scripts.append(script)
    return scripts


_STATS_KEYS = {("Advertisements", "Received"): "advert_rcvd", ("Advertisements", "Sent"): "advert_sent",
               ("Packet Errors", "Length"): "packet_len_err", ("Packet Errors", "TTL"): "ip_ttl_err",
               ("Packet Errors", "Invalid Type"): "invalid_type_rcvd",
               ("Packet Errors", "Advertisement Interval"): "advert_interval_err",
               ("Packet Errors", "Address List"): "addr_list_err",
               ("Authentication Errors", "Invalid Type"): "invalid_authtype",
               ("Authentication Errors", "Type Mismatch"): "authtype_mismatch",
               ("Authentication Errors", "Failure"): "auth_failure",
               ("Priority Zero", "Received"): "pri_zero_rcvd", ("Priority Zero", "Sent"): "pri_zero_sent",
               ("", "Became master"): "become_master", ("", "Released master"): "release_master"}


def mehdy_parse_stats(text: str) -> dict[str, dict[str, int]]:
    """ParseStats: `VRRP Instance: X`, `  Section:` headers, `    Label: N` and `  Label: N` (strconv.Atoi)."""
    stats: dict[str, dict[str, int]] = {}
    instance = section = ""
    for line in text.split("\n"):
        if line.startswith("VRRP Instance") and ":" in line:
            instance = line.strip().split(":")[1].strip()
            stats[instance] = {}
        elif line.startswith("  ") and line.endswith(":"):
            section = line.strip().split(":")[0].strip()
        elif line.startswith("    ") and section:
            k, v = (p.strip() for p in line.strip().split(":")[:2])
            assert re.fullmatch(r"[+-]?\d+", v), f"Unknown metric value from keepalived.stats: {k}: {v}"
            if (section, k) in _STATS_KEYS:
                stats[instance][_STATS_KEYS[(section, k)]] = int(v)
        elif line.startswith("  ") and not line.endswith(":") and not line.startswith("    "):
            k, v = (p.strip() for p in line.strip().split(":")[:2])
            section = ""
            assert re.fullmatch(r"[+-]?\d+", v), f"Unknown metric value from keepalived.stats: {k}: {v}"
            if ("", k) in _STATS_KEYS:
                stats[instance][_STATS_KEYS[("", k)]] = int(v)
    return stats


def mehdy_text_metrics(files: dict[str, str]) -> set[Metric]:
    """The default mode: keepalived.data and keepalived.stats, joined by instance name (counts must agree)."""
    data, stats = mehdy_parse_data(files["keepalived.data"]), mehdy_parse_stats(files["keepalived.stats"])
    assert len(data) == len(stats), "keepalived.data and keepalived.stats datas are not synced"
    vrrps = [(data[name], stats[name]) for name in data]
    return mehdy_metrics_from(vrrps, mehdy_parse_scripts(files["keepalived.data"]))


def mehdy_json_metrics(files: dict[str, str]) -> set[Metric]:
    """--ka.json: keepalived.json decoded into typed structs (no scripts in this mode)."""
    vrrps = [(go_decode(e["data"], MEHDY_DATA), go_decode(e["stats"], STATS_FIELDS))
             for e in json.loads(files["keepalived.json"])]
    return mehdy_metrics_from(vrrps, [])


@pytest.mark.parametrize("exporter", ["mehdy-text", "mehdy-json", "gen2brain"])
def test_exporters_extract_from_ours_what_they_extract_from_keepalived(runs: tuple[Run, Run], exporter: str) -> None:
    ka, py = runs
    extract = {"mehdy-text": mehdy_text_metrics, "mehdy-json": mehdy_json_metrics,
               "gen2brain": lambda files: gen2brain_metrics(files["keepalived.json"])}[exporter]
    theirs, ours = extract(ka.files), extract(py.files)
    assert len(theirs) > 20
    assert ours == theirs, {"only keepalived's": theirs - ours, "only ours": ours - theirs}


def test_exporters_read_the_same_values_where_they_do_not_move(runs: tuple[Run, Run]) -> None:
    """State, VIPs, script status and the counters that cannot move once all are masters read the same."""
    ka, py = runs
    ka_data, py_data = mehdy_parse_data(ka.files["keepalived.data"]), mehdy_parse_data(py.files["keepalived.data"])
    assert py_data == ka_data
    assert mehdy_parse_scripts(py.files["keepalived.data"]) == mehdy_parse_scripts(ka.files["keepalived.data"]) \
        == [{"Name": "chk", "Status": "GOOD", "State": "idle"}]
    ka_stats = mehdy_parse_stats(ka.files["keepalived.stats"])
    py_stats = mehdy_parse_stats(py.files["keepalived.stats"])
    for name in INSTANCES:
        moving = {"advert_sent", "advert_rcvd"}
        assert {k: v for k, v in py_stats[name].items() if k not in moving} == \
            {k: v for k, v in ka_stats[name].items() if k not in moving}
        assert py_stats[name]["advert_sent"] > 0
