"""The NAT lab with both routers serving the API and its runtime routes on unix sockets (issue 16's lab tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.lvs_lab import API_ROUTER_ARGS, LvsLab


@contextlib.contextmanager
def runtime_api_lab(tag: str, workdir: Path) -> Iterator[LvsLab]:
    """Up, yielded, and always closed; the routers' log tails are printed for a failing test's report."""
    lab = LvsLab("nat", prefix=unique_prefix(tag), name=tag, workdir=workdir,
                 router_args=API_ROUTER_ARGS)
    try:
        lab.up()
        yield lab
    finally:
        for router in lab.routers.values():
            print(f"===== {router.name} =====\n{router.log()[-3000:]}")
        lab.close()
