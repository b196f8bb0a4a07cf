"""global_defs startup_script and shutdown_script, run by the daemon's main process as keepalived 2.2.7 does.

keepalived's parent runs startup_script once it has daemonised and waits for
it (at most startup_script_timeout, default 10 s; then the script's process
group is stopped) before it starts the VRRP and checker processes; it runs
shutdown_script after both have stopped, again waiting at most
shutdown_script_timeout, and only then exits. A failing script is logged
and changes nothing else. Children (`--child`) never run them: their parent did.
Both are vetted like every other script (enable_script_security, script_user).
"""

from __future__ import annotations

import asyncio
import logging

from ..config.model import KeepalivedConfig
from ..scripts.runner import ScriptRunner

DEFAULT_TIMEOUT_S = 10
log = logging.getLogger("pykeepalived")


def run_start_stop_script(config: KeepalivedConfig, which: str) -> None:
    """Run `which` ("startup" or "shutdown") to its end or its timeout; nothing if the config has none."""
    g = config.global_defs
    script = g.startup_script if which == "startup" else g.shutdown_script
    if script is None or not script.argv:
        return
    timeout = (g.startup_script_timeout if which == "startup" else g.shutdown_script_timeout) or DEFAULT_TIMEOUT_S
    log.info("Running %s script %s", which, script.argv[0])
    outcome = asyncio.run(ScriptRunner.for_config(config, "main").run(script, (), float(timeout)))
    if outcome.error and not outcome.disabled:
        log.error("Call of %s script %s failed: %s", which, script.argv[0], outcome.error)
    elif outcome.timed_out:
        log.warning("%s script %s timed out after %d s; its process group was stopped", which, script.argv[0],
                    timeout)
    elif outcome.status:
        log.info("%s script failed, status %d", which, outcome.status)
