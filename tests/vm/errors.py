"""The one exception type of the qemu guest harness."""

from __future__ import annotations

CONSOLE_TAIL_LINES = 25


class GuestError(Exception):
    """The guest could not be prepared, booted or run to the end.

    Expected failures (no network for the kernel package, qemu refusing to start,
    a boot that hangs, a script that outlives its timeout) raise this with a
    one-line reason. ``output`` holds what the script had printed so far and
    ``console`` the kernel/serial console, whose tail is appended to the message
    because that is where a failed boot explains itself.
    """

    def __init__(self, message: str, *, output: str = "", console: str = "") -> None:
        self.reason = message
        self.output = output
        self.console = console
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = self.reason
        tail = [line for line in self.console.splitlines() if line.strip()][-CONSOLE_TAIL_LINES:]
        if tail:
            text += "\n--- guest console (tail) ---\n" + "\n".join(tail)
        if self.output:
            text += "\n--- script output so far ---\n" + self.output[-4000:]
        return text
