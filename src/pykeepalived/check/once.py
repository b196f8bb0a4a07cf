"""`pykeepalived probe -f FILE`: run every checker of a config once and say what each found.

For an admin writing a config ("would my HTTP_GET pass against this server
right now?") and for tests that run one attempt of a checker inside a network
namespace. Nothing is scheduled, retried or changed: one attempt each, all at
once, with the timeouts of the config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import LexerOptions, read_config
from ..errors import PyKeepalivedError
from ..host.files import LocalFileSystem
from .plan import CheckerPlan, ServicePlan, build_plan


@dataclass(frozen=True)
class OnceResult:
    virtual_server: str
    real_server: str
    checker: str
    ok: bool
    reason: str
    weight_offset: int | None
    elapsed_s: float


async def _one(vs: str, rs: str, chk: CheckerPlan) -> OnceResult:
    start = time.monotonic()
    result = await chk.probe.run()
    return OnceResult(vs, rs, chk.kind, result.ok, result.reason, result.weight_offset,
                      round(time.monotonic() - start, 4))


async def run_all(plans: list[ServicePlan]) -> list[OnceResult]:
    jobs = [_one(svc.name, rs.name, chk) for svc in plans for rs in svc.real_servers for chk in rs.checkers]
    return list(await asyncio.gather(*jobs))


def probe_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="pykeepalived probe",
                                description="Run every health checker of a config once and print the results.")
    p.add_argument("-f", "--use-file", metavar="FILE", default="/etc/keepalived/keepalived.conf")
    p.add_argument("-i", "--config-id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    config_id = args.config_id or socket.gethostname().split(".", 1)[0]
    try:
        loaded = read_config(args.use_file, LocalFileSystem(), None, LexerOptions(config_id=config_id, cwd=os.getcwd()))
        for diag in loaded.diagnostics:
            print(diag.format(), file=sys.stderr)
        if loaded.errors:
            print(f"{args.use_file}: {len(loaded.errors)} configuration error(s)", file=sys.stderr)
            return 1
        results = asyncio.run(run_all(build_plan(loaded.config)))
    except PyKeepalivedError as exc:
        print(f"pykeepalived probe: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=1))
    else:
        for r in results:
            verdict = "ok" if r.ok else f"FAILED: {r.reason}"
            print(f"{r.virtual_server} {r.real_server} {r.checker}: {verdict} ({r.elapsed_s * 1000:.0f} ms)")
    return 0 if all(r.ok for r in results) else 4
