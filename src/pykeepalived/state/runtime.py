"""What an operator changed at run time (the runtime API), held by the child that acts on it.

The VRRP child holds one for its instances, the checker child one for its
virtual and real servers (`VrrpService.runtime`, `CheckService.runtime`).
The runtime API's handlers change it and act; the state views show it, so
that a drained server or an instance held in BACKUP is marked as changed at
run time, not confused with the config. Names are the state document's
(docs/state.md): instance names, virtual server names ("TCP 192.0.2.10:80"),
real server names ("10.11.12.2:80"). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RuntimeOverrides:
    maintenance: set[str] = field(default_factory=set)  # VRRP instances held in BACKUP
    drained: set[tuple[str, str]] = field(default_factory=set)  # (virtual server, real server): weight 0
    weights: dict[tuple[str, str], int] = field(default_factory=dict)  # (virtual server, real server): weight
    out: set[str] = field(default_factory=set)  # virtual servers taken out whole

    def is_empty(self) -> bool:
        return not (self.maintenance or self.drained or self.weights or self.out)
