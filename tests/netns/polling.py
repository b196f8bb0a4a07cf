"""Waiting for several things at once, and when each happened: the "within a second" checks of issue 16."""

from __future__ import annotations

import time
from collections.abc import Callable


def first_true(conditions: dict[str, Callable[[], bool]], timeout_s: float) -> dict[str, float]:
    """Poll each condition every 50 ms: the monotonic time each first held (missing ones never did).

    A condition that raises while the daemon is between states (a file being
    replaced, a key not there yet, no such item) simply has not held yet.
    """
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < len(conditions) and time.monotonic() < deadline:
        for name, cond in conditions.items():
            if name not in seen:
                try:
                    if cond():
                        seen[name] = time.monotonic()
                except (OSError, ValueError, KeyError, StopIteration):
                    pass
        time.sleep(0.05)
    return seen
