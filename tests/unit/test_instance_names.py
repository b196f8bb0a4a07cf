"""net_namespace / instance / use_pid_dir: parsing (keepalived 2.2.7's errors) and the names that follow.

The names are keepalived 2.2.7's (main.c, pidfile.c, global_data.c), checked
against a running keepalived in tests/netns/test_net_namespace.py.
"""

from __future__ import annotations

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.config.instance_names import Naming, data_dump_path, pid_dirs, pid_files, status_file, syslog_ident


def test_default_pid_files_without_namespace_or_instance() -> None:
    names = pid_files(Naming())
    assert (names.main, names.vrrp, names.checkers) == (
        "/run/keepalived.pid", "/run/keepalived_vrrp.pid", "/run/keepalived_checkers.pid")
    assert pid_dirs(Naming()) == ()


@pytest.mark.parametrize(("naming", "expected"), [
    (Naming(use_pid_dir=True), ("/run/keepalived/keepalived.pid", "/run/keepalived/vrrp.pid",
                                "/run/keepalived/checkers.pid")),
    (Naming(instance="blue"), ("/run/keepalived/keepalived_blue.pid", "/run/keepalived/vrrp_blue.pid",
                               "/run/keepalived/checkers_blue.pid")),
    (Naming(namespace="x"), ("/run/keepalived/x/keepalived.pid", "/run/keepalived/x/vrrp.pid",
                             "/run/keepalived/x/checkers.pid")),
    (Naming(namespace="x", instance="blue"), ("/run/keepalived/x/keepalived_blue.pid",
                                              "/run/keepalived/x/vrrp_blue.pid",
                                              "/run/keepalived/x/checkers_blue.pid")),
])
def test_pid_files_in_keepalived_pid_dir(naming: Naming, expected: tuple[str, str, str]) -> None:
    names = pid_files(naming)
    assert (names.main, names.vrrp, names.checkers) == expected


def test_pid_dirs_outermost_first() -> None:
    assert pid_dirs(Naming(namespace="x")) == ("/run/keepalived", "/run/keepalived/x")
    assert pid_dirs(Naming(instance="i")) == ("/run/keepalived",)


def test_syslog_ident() -> None:
    assert syslog_ident("Keepalived_vrrp", Naming()) == "Keepalived_vrrp"
    assert syslog_ident("Keepalived", Naming(namespace="x")) == "Keepalived_x"
    assert syslog_ident("Keepalived_healthcheckers", Naming(namespace="x", instance="i")) == \
        "Keepalived_healthcheckers_x_i"


def test_data_dump_names_only_with_data_use_instance() -> None:
    both = Naming(namespace="x", instance="i")
    assert data_dump_path("keepalived.data", "/tmp", both, False) == "/tmp/keepalived.data"
    assert data_dump_path("keepalived.data", "/tmp", Naming(), True) == "/tmp/keepalived.data"
    assert data_dump_path("keepalived.data", "/tmp", both, True) == "/tmp/keepalived.x_i.data"
    assert data_dump_path("keepalived_check.data", "/tmp", Naming(instance="i"), True) == \
        "/tmp/keepalived_check.i.data"
    assert data_dump_path("keepalived.data", "/tmp", Naming(namespace="x"), True) == "/tmp/keepalived.x.data"


def test_status_file_kept_apart() -> None:
    assert status_file(Naming()) == "/run/pykeepalived/checker.json"
    assert status_file(Naming(namespace="x", instance="i")) == "/run/pykeepalived/x/checker_i.json"


def _errors(text: str) -> list[str]:
    return [d.message for d in read_config_text(text).errors]


def test_keywords_fill_global_defs() -> None:
    g = read_config_text("net_namespace x\ninstance blue extra\nnet_namespace_ipvs\nnamespace_with_ipsets\n"
                         ).config.global_defs
    assert (g.net_namespace, g.instance, g.net_namespace_ipvs, g.namespace_with_ipsets, g.use_pid_dir) == \
        ("x", "blue", "", True, True)
    assert read_config_text("use_pid_dir\n").config.global_defs.use_pid_dir


@pytest.mark.parametrize(("text", "message"), [
    ("net_namespace a\nnet_namespace b\n", "Duplicate net_namespace definition b - ignoring"),
    ("net_namespace\n", "net_namespace name missing - ignoring"),
    ("instance a\ninstance b\n", "Duplicate instance definition b - ignoring"),
    ("instance\n", "instance name missing - ignoring"),
    ("net_namespace_ipvs a\nnet_namespace_ipvs b\n", "Duplicate net_namespace_ipvs definition b - ignoring"),
])
def test_keepalived_errors(text: str, message: str) -> None:
    assert _errors(text) == [message]


def test_first_value_kept_after_duplicate() -> None:
    assert read_config_text("net_namespace a\nnet_namespace b\n").config.global_defs.net_namespace == "a"
