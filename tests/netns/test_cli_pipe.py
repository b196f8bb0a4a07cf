"""A reader that goes away (`| head -1`) ends any pykeepalived command quietly: no traceback, no "Exception ignored".

Each command runs through a real shell pipe into `head -1`, with more output
than a pipe holds (64 KiB), so that the write really meets the closed pipe.
`probe` checks 600 TCP ports of the loopback of a namespace of its own (all
closed: each attempt is refused at once).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.netns import Netns

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

PYKEEPALIVED = [sys.executable, "-m", "pykeepalived"]


@pytest.fixture
def netns() -> Iterator[Netns]:
    ns = Netns(unique_prefix("pipe"))
    ns.create()
    try:
        yield ns
    finally:
        ns.delete()


def many_checkers(path: Path, count: int = 600) -> Path:
    parts = ["virtual_server 192.0.2.10 80 {\n delay_loop 5\n lb_algo rr\n lb_kind NAT\n protocol TCP\n"]
    parts += [f" real_server 127.0.0.1 {1 + i} {{\n  TCP_CHECK {{\n   connect_timeout 2\n  }}\n }}\n"
              for i in range(count)]
    path.write_text("".join(parts) + "}\n")
    return path


def through_head(argv: list[str], netns: Netns | None = None) -> subprocess.CompletedProcess[str]:
    """`ARGV | head -1` in a shell, with the command's stderr kept apart from head's output."""
    command = shlex.join(netns.argv(argv) if netns else argv)
    return subprocess.run(["sh", "-c", f"{command} | head -1"], capture_output=True, text=True, timeout=120,
                          env={**os.environ}, check=False)


def assert_quiet(done: subprocess.CompletedProcess[str]) -> None:
    assert done.stdout.count("\n") == 1, done.stdout[:300]
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr and "Exception ignored" not in \
        done.stderr, done.stderr


@pytest.mark.parametrize("extra", [["--json"], []], ids=["json", "text"])
def test_probe_into_head(netns: Netns, tmp_path: Path, extra: list[str]) -> None:
    conf = many_checkers(tmp_path / "k.conf")
    done = through_head([*PYKEEPALIVED, "probe", "-f", str(conf), *extra], netns)
    assert_quiet(done)
    assert done.stdout.startswith("[" if extra else "[192.0.2.10]:tcp:80")


@pytest.mark.parametrize("extra", [["--json"], []], ids=["json", "text"])
def test_status_into_head(tmp_path: Path, extra: list[str]) -> None:
    services = [{"name": f"vs{i}", "kind": "address", "protocol": "TCP", "address": "192.0.2.1", "port": i,
                 "scheduler": "rr", "destinations": []} for i in range(3000)]
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"pid": 2**22 + 1, "time": time.time(), "dataplane": "none", "applied": True,
                                "table": {"services": services}, "counts": {}, "services": []}))
    path.chmod(0o644)
    assert_quiet(through_head([*PYKEEPALIVED, "status", "--status-file", str(path), *extra]))


def test_dump_config_and_help_into_head(tmp_path: Path) -> None:
    conf = many_checkers(tmp_path / "k.conf")
    assert_quiet(through_head([*PYKEEPALIVED, "--dump-config", "--no-host-checks", "-f", str(conf)]))
    assert_quiet(through_head([*PYKEEPALIVED, "-h"]))
    assert_quiet(through_head([*PYKEEPALIVED, "lab", "--help"]))
