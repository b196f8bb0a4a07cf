"""The BFD child process: keepalived's bfd process, started by the parent when the config has bfd_instances.

It runs every session (bfd/service.py) and tells the VRRP and checker
processes of each Up and Down (bfd/events.py). Its settings are global_defs
bfd_process_name, bfd_priority, bfd_rt_priority, bfd_rlimit_rttime,
bfd_no_swap and bfd_cpu_affinity (host/tuning.py), applied as the VRRP and
checker processes apply theirs. The signals the parent forwards (reload, the
dumps) mean nothing to it and are ignored; TERM/INT stop it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ..config.model import KeepalivedConfig
from ..host.tuning import apply_tuning, tuning_for
from .lifeline import FORWARDED_SIGNALS, accept_forwarded_signals, leave_interrupt_to_parent
from .run import DaemonOptions, begin


def run_bfd(config: KeepalivedConfig, opts: DaemonOptions) -> int:
    """Serve the BFD sessions until SIGTERM/SIGINT; returns the exit code."""
    from ..bfd.service import BfdService

    pids = begin(opts, "Keepalived_bfd", "BFD child")
    if pids is None:
        return 1
    apply_tuning(tuning_for(config.global_defs, "bfd"))  # before any thread starts
    log = logging.getLogger("pykeepalived")

    async def main() -> None:
        service = BfdService(config, os.getppid())
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, service.stop)
        if opts.child:  # Ctrl-C reaches the whole process group: the parent orders the stop
            leave_interrupt_to_parent(loop, "BFD child")
        else:
            loop.add_signal_handler(signal.SIGINT, service.stop)
        for sig in FORWARDED_SIGNALS:
            loop.add_signal_handler(sig, lambda: None)
        accept_forwarded_signals()
        await service.run()

    try:
        asyncio.run(main())
    except OSError as exc:
        log.error("BFD stopped on an error: %s", exc)
        return 1
    finally:
        pids.remove()
    log.info("Stopped")
    return 0
