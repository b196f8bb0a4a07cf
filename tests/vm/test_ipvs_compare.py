"""pykeepalived's IPVS backend builds the same kernel table as keepalived 2.2.7 (`ipvsadm -Sn`, lines sorted).

One guest boot runs tests/vm/ipvs_compare.py: every keepalived sample config
with a virtual_server, and the Red Hat guide's NAT and DR configs, under both
daemons (checker only, each in its own network namespace), with every health
checker replaced by a MISC_CHECK that a flag file fails; the same real servers
go down and come back for both, and after each step both tables are read.
Here, on the host, each config's tables must be equal at every step.

pykeepalived runs as its own command (`python -m pykeepalived -C --dataplane
ipvs`). A step counts as done when both daemons ran every checker twice since
the change, pykeepalived's status file says it decided the same and the kernel
has its table, and both tables then stay unchanged for a few seconds. How fast
each table gets there is not compared; IPVS commands pykeepalived had to
retry are (test_pykeepalived_ipvs_commands_are_taken).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from tests.vm import ipvs_compare
from tests.vm.guest import GuestImage, guest_cpus, run_in_guest
from tests.vm.shares import REPO, share_for

GUEST_TIMEOUT_S = 1500  # measured: ~4 minutes for the 18 configs on a quiet 2-core machine, 8 on a busy one

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.keepalived,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.timeout(GUEST_TIMEOUT_S + 300)]

CONFIGS = list(ipvs_compare.config_sources())  # the samples (if installed) and examples/: 18 here


@pytest.fixture(scope="module")
def comparison(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The guest run: results.json of tests/vm/ipvs_compare.py over every config."""
    base = tmp_path_factory.mktemp("ipvs-compare")
    workdir = base / "run"
    script = f"cd {REPO} && PYTHONPATH={REPO}/src {sys.executable} -m tests.vm.ipvs_compare --workdir {workdir}"
    result = run_in_guest(script, share=share_for(base), timeout_s=GUEST_TIMEOUT_S, memory_mb=3072,
                          cpus=guest_cpus(), image=guest_image)
    print(result.output)
    print(f"[guest: exit {result.returncode}, boot {result.boot_s:.1f} s, total {result.elapsed_s:.1f} s; "
          f"files in {workdir}]")
    assert result.returncode == 0, result.output[-6000:]
    data: dict[str, Any] = json.loads((workdir / "results.json").read_text())
    data["workdir"] = str(workdir)
    return data


def table_diff(step: dict[str, Any]) -> str:
    """Lines only keepalived has (`-`) and only pykeepalived has (`+`)."""
    ka = step.get("keepalived") or []
    py = step.get("pykeepalived") or []
    out = [f"- {line}" for line in ka if line not in py] + [f"+ {line}" for line in py if line not in ka]
    for kind, table in (("keepalived", step.get("keepalived")), ("pykeepalived", step.get("pykeepalived"))):
        if table is None:
            out.append(f"  ({kind}: no table read)")
    return "\n".join(out)


def test_pykeepalived_ipvs_commands_are_taken(comparison: dict[str, Any]) -> None:
    """pykeepalived logged no IPVS command that failed (it retries, so a table may still end up right)."""
    failed = {name: r.get("py_ipvs_errors") or [] for name, r in comparison["configs"].items() if "same_as" not in r}
    failed = {name: lines for name, lines in failed.items() if lines}
    assert not failed, "pykeepalived's IPVS commands failed:\n" + "\n".join(
        f"{name}: {len(lines)} lines, e.g. {lines[0]}" for name, lines in failed.items())


@pytest.mark.parametrize("name", CONFIGS)
def test_same_ipvs_table_as_keepalived(comparison: dict[str, Any], name: str) -> None:
    if name in ipvs_compare.EXCLUDED:
        pytest.skip(ipvs_compare.EXCLUDED[name])
    result = comparison["configs"].get(name)
    assert result is not None, f"the guest run has no result for {name}"
    # a config that transforms into the same configs as an earlier one was not run again (ipvs_compare.main)
    ran = result.get("same_as", name)
    where = f"{comparison['workdir']}/{ran}" + (f"; the same experiment as {ran}" if ran != name else "")
    problems = []
    for n, step in enumerate(result["steps"]):
        title = f"step {n} '{step['step']}' (down: {', '.join(step['down']) or 'none'})"
        if step.get("timed_out"):
            problems.append(f"{title}: timed out after {step['settled_s']} s"
                            + (f", not checked: {step['unchecked']}" if step.get("unchecked") else ""))
        if step.get("keepalived") != step.get("pykeepalived"):
            problems.append(f"{title}: keepalived (-) and pykeepalived (+) differ:\n{table_diff(step)}")
    if result["error"]:
        problems.append(f"error: {result['error']}")
    if problems and result.get("py_ipvs_errors"):
        errors = result["py_ipvs_errors"]
        problems.append(f"pykeepalived logged {len(errors)} IPVS errors, e.g.:\n" + "\n".join(errors[:3]))
    if len(result["steps"]) != result.get("planned_steps"):
        problems.append(f"only {len(result['steps'])} steps ran")
    assert not problems, f"{name} (configs and logs in {where}):\n" + "\n\n".join(problems)
