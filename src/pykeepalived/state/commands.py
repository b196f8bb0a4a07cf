"""How the parent's API asks a child to act: the contract between the runtime API and the children.

A command is a JSON object {"op": ..., ...} sent to one child ("vrrp" or
"checker"); the reply is a JSON object {"ok": bool, "message": str, ...}.
The parent's side (daemon/) implements `CommandSender` over a pipe per
child; the API's runtime routes (api/runtime_routes.py) only see this
protocol, so they can be tested without processes.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import PyKeepalivedError


class CommandError(PyKeepalivedError):
    """The child is not running, did not answer in time, or refused the command; the text says which."""


class CommandSender(Protocol):
    async def send(self, child: str, command: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
        """The child's reply; raises CommandError when there is none."""
        ...
