"""host/malloc_trim.py: memory that C code freed leaves the process's resident set (glibc)."""

from __future__ import annotations

import ctypes

import pytest

from pykeepalived.host.malloc_trim import malloc_trim


def rss_anon_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))


def test_freed_c_heap_is_given_back() -> None:
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_trim"):
        pytest.skip("not glibc")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = [libc.malloc(4000) for _ in range(8000)]  # 32 MB in pieces below the mmap threshold
    for block in blocks:
        libc.memset(block, 1, 4000)
    pin = libc.malloc(4000)  # the heap's top stays in use: freeing the rest cannot shrink it by itself
    for block in blocks:
        libc.free(block)
    before = rss_anon_kib()
    malloc_trim()
    after = rss_anon_kib()
    libc.free(pin)
    assert before - after > 16 * 1024
