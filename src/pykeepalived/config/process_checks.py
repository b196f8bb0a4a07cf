"""keepalived 2.2.7's -t checks of the process settings that depend on the host: CPUs that exist.

keepalived refuses a `*_cpu_affinity` naming a CPU beyond the online ones
(two errors on the line, and the whole set dropped). The host answers through
`CpuFacts`, an optional part of the host facts: without it (no host checks)
nothing is checked.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .context import ParseContext


@runtime_checkable
class CpuFacts(Protocol):
    def online_cpus(self) -> int: ...


def check_cpu_affinity(ctx: ParseContext, host: object) -> None:
    if not isinstance(host, CpuFacts):
        return
    online = host.online_cpus()
    g = ctx.config.global_defs
    for keyword, process in (("vrrp_cpu_affinity", "vrrp"), ("checker_cpu_affinity", "checker"),
                             ("bfd_cpu_affinity", "bfd")):
        cpus = {"vrrp": g.vrrp_cpu_affinity, "checker": g.checker_cpu_affinity, "bfd": g.bfd_cpu_affinity}[process]
        absent = [cpu for cpu in cpus or () if cpu >= online]
        if not absent:
            continue
        where = g.keyword_locations.get(keyword, g.location)
        ctx.error(where, f"number '{absent[0]}' outside range [0, {online - 1}]", keyword)
        ctx.error(where, f"Invalid cpu_id:{absent[0]} specified for {process} process", keyword)
        if process == "vrrp":
            g.vrrp_cpu_affinity = None
        elif process == "checker":
            g.checker_cpu_affinity = None
        else:
            g.bfd_cpu_affinity = None
