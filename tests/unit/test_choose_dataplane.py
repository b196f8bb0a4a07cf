"""Which data plane runs: the command line, then global_defs' pykeepalived_dataplane.

What runs `modprobe` (IPVS forced but missing) is in tests/netns/test_choose_dataplane_kernel.py.
"""

from __future__ import annotations

from pathlib import Path


from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, RealServer, VirtualServer
from pykeepalived.lvs.choose import dataplane_problems, ipvs_available, wanted_kind


def config(setting: str | None = None, **vs: object) -> KeepalivedConfig:
    import ipaddress

    fields: dict[str, object] = {"kind": "address", "address": ipaddress.ip_address("203.0.113.10"), "port": 80,
                                 "protocol": "TCP", "lvs_sched": "rr", "lvs_method": "NAT",
                                 "real_servers": [RealServer(ipaddress.ip_address("10.11.12.1"), 80, weight=1)]}
    fields.update(vs)
    cfg = KeepalivedConfig(global_defs=GlobalDefs(), virtual_servers=[VirtualServer(**fields)])  # type: ignore[arg-type]
    if setting is not None:
        cfg.global_defs.pykeepalived_dataplane = setting  # type: ignore[assignment]
    return cfg


def test_the_command_line_wins_over_global_defs() -> None:
    assert wanted_kind("auto", config()) == "auto"
    assert wanted_kind("auto", config("nftables")) == "nftables"
    assert wanted_kind("none", config("ipvs")) == "none"


def test_ipvs_is_available_when_loaded_or_installed(tmp_path: Path) -> None:
    import os

    assert not ipvs_available(tmp_path)
    modules = tmp_path / "lib" / "modules" / os.uname().release
    modules.mkdir(parents=True)
    (modules / "modules.dep").write_text(
        "kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko\n")
    assert ipvs_available(tmp_path)


def test_what_only_nftables_refuses_is_no_problem_for_ipvs() -> None:
    ops = config(lvs_sched="rr", sched_flags=["ops"], protocol="UDP")
    assert dataplane_problems(ops, "ipvs") == [] and dataplane_problems(ops, "none") == []
    if not ipvs_available():
        assert any("one-packet" in p for p in dataplane_problems(ops, "nftables"))
