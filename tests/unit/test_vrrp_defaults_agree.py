"""One source of VRRP defaults: config completion and the VRRP settings agree on every config we have.

config/complete.py writes keepalived's derived values (priority, state,
family, version, preemption) into the model; vrrp/settings.py builds what the
state machine runs. Both take them from config/vrrp_defaults.py. Checked
here on keepalived's sample configs, the repo's test and example configs and
the cases where the two used to disagree: the model as completed says what
the settings say, and the settings are the same whether or not the model was
completed first.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pykeepalived.config import Severity, read_config, read_config_text
from pykeepalived.config.lexer import Lexer
from pykeepalived.config.memfs import MemoryFileSystem
from pykeepalived.config.model import KeepalivedConfig
from pykeepalived.config.parser import parse_segments
from pykeepalived.config.schema import ROOT
from pykeepalived.host.files import LocalFileSystem
from pykeepalived.vrrp.settings import InstanceSettings, instance_settings
from tests.conftest import REPO

SHARED_SAMPLES = REPO.parent / "shared" / "compat" / "keepalived-samples"

CONFIG_FILES = sorted([
    *SHARED_SAMPLES.glob("keepalived.conf.*"),
    *(REPO / "tests" / "compat").rglob("*.conf"),
    *(REPO / "examples").glob("*.conf"),
])

# where the two entry points used to disagree (or could): keepalived 2.2.7's answers in the comments
TEXTS = {
    # 2.2.7 advertises priority 255 and is MASTER at once (checked with tcpdump in a netns)
    "master_no_priority": "state MASTER\n nopreempt",
    "master_preempt_delay": "state MASTER\n priority 100\n preempt_delay 5",  # both cleared
    "nopreempt_and_delay": "priority 90\n nopreempt\n preempt_delay 5",  # the delay is cleared
    "owner_without_state": "priority 255",  # MASTER
    "ah_master": "state MASTER\n priority 100\n authentication {\n auth_type AH\n auth_pass x\n }",  # BACKUP
    "v6_version_2": "version 2",  # with an IPv6 VIP: version 3
    "global_v3": "",  # with vrrp_version 3 in global_defs
    "strict_no_accept": "state MASTER\n strict_mode",  # owner: accepts
}


def _text(extra: str, name: str) -> str:
    vip = "2001:db8::100" if name == "v6_version_2" else "192.0.2.100"
    globals_ = "vrrp_version 3" if name == "global_v3" else ""
    return (f"global_defs {{\n {globals_}\n}}\nvrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n"
            f" {extra}\n virtual_ipaddress {{\n  {vip}\n }}\n}}\n")


def _parsed_only(lexer: Lexer, segments: object) -> KeepalivedConfig:
    """The model as the parser leaves it, before config/complete.py."""
    config = KeepalivedConfig()
    parse_segments(ROOT, segments, config)  # type: ignore[arg-type]
    return config


def _comparable(s: InstanceSettings) -> InstanceSettings:
    # not defaults: completion drops VIPs of the wrong family (with an error) and links members to their
    # sync group; the derived values must not move with either
    return replace(s, vips=(), excluded_vips=(), sync_group=None)


def _assert_agree(completed: KeepalivedConfig, raw: KeepalivedConfig) -> int:
    g = completed.global_defs
    for name, inst in completed.vrrp_instances.items():
        s = instance_settings(inst, g)
        assert (inst.priority, inst.state == "MASTER", inst.family, inst.version, inst.nopreempt,
                inst.preempt_delay_s) == \
            (s.base_priority, s.wanted_master, s.family, s.version, s.nopreempt, s.preempt_delay_s), name
        assert _comparable(instance_settings(raw.vrrp_instances[name], raw.global_defs)) == _comparable(s), name
    return len(completed.vrrp_instances)


def test_the_config_set_is_there() -> None:
    """No silent pass: the shared samples and the repo's configs must be found."""
    assert SHARED_SAMPLES.is_dir(), f"{SHARED_SAMPLES} is missing"
    assert len([p for p in CONFIG_FILES if p.parent == SHARED_SAMPLES]) >= 20
    assert any(p.is_relative_to(REPO / "tests") for p in CONFIG_FILES)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_completion_and_settings_agree_on_a_config_file(path: Path) -> None:
    fs = LocalFileSystem()
    completed = read_config(str(path), fs).config
    lexer = Lexer(fs)
    _assert_agree(completed, _parsed_only(lexer, lexer.segments(str(path))))


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_completion_and_settings_agree_where_they_used_to_differ(name: str) -> None:
    text = _text(TEXTS[name], name)
    completed = read_config_text(text).config
    lexer = Lexer(MemoryFileSystem({}))
    assert _assert_agree(completed, _parsed_only(lexer, lexer.segments_from_text("keepalived.conf", text))) == 1


def test_keepalived_2_2_7_answers() -> None:
    def settings(name: str) -> InstanceSettings:
        cfg = read_config_text(_text(TEXTS[name], name)).config
        return instance_settings(cfg.vrrp_instances["VI_1"], cfg.global_defs)

    s = settings("master_no_priority")
    assert (s.base_priority, s.wanted_master, s.nopreempt) == (255, True, False)
    master_delay = settings("master_preempt_delay")
    assert (master_delay.preempt_delay_s, master_delay.base_priority) == (0, 100)
    assert (settings("nopreempt_and_delay").nopreempt, settings("nopreempt_and_delay").preempt_delay_s) == (True, 0)
    assert settings("owner_without_state").wanted_master
    assert not settings("ah_master").wanted_master
    assert (settings("v6_version_2").version, settings("v6_version_2").family) == (3, 6)
    assert settings("global_v3").version == 3
    assert settings("strict_no_accept").accept


@pytest.mark.parametrize(("body", "message"), [
    ("state BACKUP\n  priority 100\n  nopreempt\n  preempt_delay 5", "preempt_delay is incompatible with nopreempt"),
    ("state MASTER\n  priority 150\n  nopreempt", "nopreempt has no effect with initial state MASTER"),
    ("state MASTER\n  priority 150\n  preempt_delay 5", "preempt_delay has no effect with initial state MASTER"),
    ("state MASTER\n  nopreempt", "nopreempt is incompatible with priority 255"),
])
def test_a_cleared_preemption_setting_is_an_error_as_in_keepalived(body: str, message: str) -> None:
    """keepalived 2.2.7's -t fails (exit 5) on each of these, checked in a namespace on 2026-12-02."""
    text = ("vrrp_instance B {\n  interface eth0\n  " + body
            + "\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n")
    result = read_config_text(text)
    errors = [d.message for d in result.diagnostics if d.severity is Severity.ERROR]
    assert [e for e in errors if message in e] != [], errors


def test_no_error_when_nothing_is_cleared() -> None:
    text = ("vrrp_instance B {\n  interface eth0\n  state BACKUP\n  priority 100\n  preempt_delay 5\n"
            "  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n")
    result = read_config_text(text)
    assert [d.message for d in result.diagnostics if d.severity is Severity.ERROR] == []
