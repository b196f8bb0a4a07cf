"""The runtime API's routes (drain, weight, take out, maintenance): registered on the API's application.

Placeholder until the runtime API lands: registers nothing.
"""

from __future__ import annotations

from typing import Any

from ..state.commands import CommandSender
from ..state.store import StateStore


def register(app: Any, commands: CommandSender, store: StateStore) -> None:
    """Add the runtime routes to `app` (an aiohttp web.Application)."""
    del app, commands, store
