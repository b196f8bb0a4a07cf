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

`map_large_allocations()` keeps glibc from holding on to big buffers. By
default glibc maps an allocation over 128 KiB with mmap, but raises that
threshold to the size of each such block freed (up to 32 MiB), so that from
then on a 1.7 MiB state part, its line and its file write come from the heap
and stay resident after they are freed, holes that the next part's buffers
do not always fit. A fixed threshold turns that off: every daemon process
sets it at start, and big buffers go back to the kernel when freed (parent
with 6,000 real servers, one part a second: 45 MiB resident after four parts
without, 37 with; docs/checkers.md).

`one_arena()` is the other half. glibc gives each thread that allocates an
arena of its own, and memory freed in one arena is never reused by another:
the checker's data plane thread (every libnftables call, and the table's
build and diff, run on it: lvs/nft.py) kept 2.5-3 MiB resident in its arena
beside the main heap's free space at 6,000 real servers (docs/checkers.md,
"At scale"). The checker asks for a single arena before any thread starts,
so the thread's transients and the event loop's reuse the same free space.
Each thread keeps its tcache, so small allocations take no shared lock; the
data plane thread allocates seldom, so the main arena's lock is not
contended. An optimisation only: where mallopt is missing (not glibc) or
refuses, nothing changes.
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


M_ARENA_MAX = -8  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 * 1024  # a fixed threshold: also turns off glibc's raising of it


@functools.cache
def _mallopt_function() -> Callable[[int, int], int] | None:
    """The C library's mallopt, looked up once; None where there is none."""
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    return mallopt


def one_arena() -> bool:
    """Make every thread started from now on allocate from glibc's main arena; True if the C library took it.

    Call before any thread starts: a thread that already has an arena keeps it.
    """
    mallopt = _mallopt_function()
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def map_large_allocations() -> bool:
    """Serve allocations of MMAP_THRESHOLD_BYTES and more with mmap, always; True if the C library took it."""
    mallopt = _mallopt_function()
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def malloc_trim() -> None:
    """Give the free pages of the C heap back; a no-op where the C library has no malloc_trim."""
    trim = _trim_function()
    if trim is not None:
        trim(0)
