"""Checker timing has one source: config completion and the checker plan agree, on keepalived 2.2.7's values.

`config/checker_timing.py` works a checker's timing out from the raw
config; completion writes it into the model; `check/plan.py` turns the
completed model into the CheckerTiming the checker cores run on. Over every
sample config and every config file of the repo, the three must agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.check.plan import FILE_TIMING, build_plan, timing_of
from pykeepalived.config import read_config, read_config_text
from pykeepalived.config.checker_timing import CheckerTiming, checker_timing, completed_timing
from pykeepalived.errors import PyKeepalivedError
from pykeepalived.config.lexer import Lexer
from pykeepalived.config.model import CheckerBase, KeepalivedConfig, RealServer, VirtualServer
from pykeepalived.config.parser import parse_segments
from pykeepalived.config.schema import ROOT
from pykeepalived.host.files import LocalFileSystem
from tests.conftest import REPO, samples_dir

SAMPLES = samples_dir()
CONFIGS = sorted([
    *(SAMPLES.glob("keepalived.conf.*") if SAMPLES is not None else ()),
    *REPO.glob("examples/*.conf"),
    *REPO.glob("tests/compat/*.conf"),
    *REPO.glob("tests/compat/broken/*.conf"),
])


def checkers(config: KeepalivedConfig) -> Iterator[tuple[CheckerBase, RealServer, VirtualServer]]:
    for vs in config.virtual_servers:
        for rs in vs.real_servers:
            for checker in rs.checkers:
                yield checker, rs, vs


def raw_config(path: Path) -> KeepalivedConfig:
    """The model as parsed, before completion fills any default."""
    config = KeepalivedConfig()
    parse_segments(ROOT, Lexer(LocalFileSystem()).segments(str(path)), config)
    return config


def test_there_are_configs_with_checkers() -> None:
    """Guard against the agreement test passing on nothing."""
    total = sum(1 for path in CONFIGS for _ in checkers(raw_config(path)))
    assert SAMPLES is not None, "keepalived's sample configs are missing (tests/conftest.py SAMPLES_DIRS)"
    assert total >= 20


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_completion_and_plan_agree_with_checker_timing(path: Path) -> None:
    raw = {c.location: (c, rs, vs) for c, rs, vs in checkers(raw_config(path))}
    config = read_config(str(path), LocalFileSystem()).config
    for checker, _, _ in checkers(config):
        expected = checker_timing(*raw[checker.location])
        assert completed_timing(checker) == expected, checker.location
        assert dataclasses.asdict(timing_of(checker)) == dataclasses.asdict(expected), checker.location
    try:
        plans = build_plan(config)
    except PyKeepalivedError:  # a checker we cannot run (BFD_CHECK) or a script refused: timing_of covered it
        return
    for plan in plans:
        for rs_plan in plan.real_servers:
            for chk in rs_plan.checkers:
                if chk.kind == "FILE_CHECK":
                    assert chk.timing == FILE_TIMING
                    continue
                assert dataclasses.asdict(chk.timing) == dataclasses.asdict(completed_timing(chk.config))


INHERITANCE = """
virtual_server 192.0.2.10 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  %(vs)s
  real_server 192.0.2.1 80 {
    %(rs)s
    %(kind)s {
      %(checker)s
      %(extra)s
    }
  }
}
"""
EXTRA = {  # what each kind needs besides timing to be a valid checker
    "HTTP_GET": "url {\n path /\n status_code 200\n }",
    "SSL_GET": "url {\n path /\n status_code 200\n }",
    "MISC_CHECK": "misc_path /bin/true",
    "DNS_CHECK": "name example.test",
}


def timing_for(kind: str, vs: str = "", rs: str = "", checker: str = "") -> CheckerTiming:
    result = read_config_text(INHERITANCE % {"vs": vs, "rs": rs, "kind": kind, "checker": checker,
                                             "extra": EXTRA.get(kind, "")})
    assert not result.errors, result.errors
    (chk,) = result.config.virtual_servers[0].real_servers[0].checkers
    timing = completed_timing(chk)
    for plan in build_plan(result.config)[0].real_servers[0].checkers:  # the plan runs what completion wrote
        assert dataclasses.asdict(plan.timing) == dataclasses.asdict(timing)
    return timing


@pytest.mark.parametrize(("kind", "retry", "delay_before_retry"), [
    ("TCP_CHECK", 1, 1.0), ("PING_CHECK", 1, 1.0), ("UDP_CHECK", 1, 1.0), ("SMTP_CHECK", 1, 1.0),
    ("HTTP_GET", 1, 3.0), ("SSL_GET", 1, 3.0), ("MISC_CHECK", 0, 1.0), ("DNS_CHECK", 3, 60.0),
])
def test_keepalived_defaults_per_kind(kind: str, retry: int, delay_before_retry: float) -> None:
    """check_data.c alloc_vs, check_api.c queue_checker and the kinds' handlers (2.2.7)."""
    assert timing_for(kind) == CheckerTiming(delay_loop_s=60.0, connect_timeout_s=5.0, retry=retry,
                                             delay_before_retry_s=delay_before_retry, warmup_s=60.0, alpha=False)


def test_checker_over_real_server_over_virtual_server() -> None:
    vs = "delay_loop 30\n connect_timeout 7\n retry 4\n delay_before_retry 2\n warmup 9\n alpha"
    assert timing_for("TCP_CHECK", vs=vs) == CheckerTiming(30.0, 7.0, 4, 2.0, 9.0, True)
    rs = "delay_loop 20\n connect_timeout 6\n retry 3\n delay_before_retry 4\n warmup 8"
    assert timing_for("TCP_CHECK", vs=vs, rs=rs) == CheckerTiming(20.0, 6.0, 3, 4.0, 8.0, True)
    own = "delay_loop 10\n connect_timeout 5\n retry 2\n delay_before_retry 6\n warmup 7\n alpha no"
    assert timing_for("TCP_CHECK", vs=vs, rs=rs, checker=own) == CheckerTiming(10.0, 5.0, 2, 6.0, 7.0, False)


def test_warmup_follows_the_checkers_own_delay_loop() -> None:
    assert timing_for("TCP_CHECK", vs="delay_loop 30", checker="delay_loop 10").warmup_s == 10.0
    assert timing_for("TCP_CHECK", vs="delay_loop 30", rs="delay_loop 20").warmup_s == 20.0


def test_dns_check_retries_after_its_own_delay_loop() -> None:
    """keepalived's DNS_CHECK delay_before_retry is 0 there, which means the checker's (inherited) delay_loop.

    Before the one-source refactor completion used the virtual server's
    delay_loop, ignoring a delay_loop set on the real server or the checker.
    """
    assert timing_for("DNS_CHECK", vs="delay_loop 30").delay_before_retry_s == 30.0
    assert timing_for("DNS_CHECK", vs="delay_loop 30", rs="delay_loop 20").delay_before_retry_s == 20.0
    assert timing_for("DNS_CHECK", vs="delay_loop 30", checker="delay_loop 10").delay_before_retry_s == 10.0
    assert timing_for("DNS_CHECK", checker="delay_loop 10 \n delay_before_retry 2").delay_before_retry_s == 2.0
