"""Hand back to the kernel what a C library freed: glibc's malloc_trim(0).

libnftables parses each JSON transaction into its own objects and fetches
the kernel's copy of the table into a cache, all in C: at 6,000 real servers
one apply allocates and frees some 9 MiB (bench/checks.py, the checker's
first table). glibc keeps freed memory in its arenas, so the process's
resident size keeps it, and every later transient (a status file, a check
round) piles on top of it: the peak grows by what no one uses. malloc_trim
returns the free pages of every arena (madvise): 0.1 ms after a transaction,
up to 10 ms after tens of MB were freed in small pieces (measured here), so it
is called after the rare, big C calls only, in the data plane's thread.

Without glibc (musl has no malloc_trim) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _trim_function() -> Callable[[int], int] | None:
    """The C library's malloc_trim, looked up once; None where there is none."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def malloc_trim() -> None:
    """Give the free pages of the C heap back; a no-op where the C library has no malloc_trim."""
    trim = _trim_function()
    if trim is not None:
        trim(0)
