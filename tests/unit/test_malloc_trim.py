"""host/malloc_trim.py: C memory freed leaves the resident set; one arena for all threads (glibc)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

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


def _kib_from_child(script: str, mode: str) -> int:
    """Run `script` in a fresh interpreter (mallopt settings are per process) without MALLOC_* from the
    environment; the KiB it prints."""
    if not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.skip("not glibc")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=30,
                          env=env, check=True)
    return int(done.stdout)


THREAD_ARENA = """
import ctypes
import sys
import threading
from pykeepalived.host.malloc_trim import one_arena

def vm_size_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))

if sys.argv[1] == "one":
    assert one_arena()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = vm_size_kib()
def work():
    libc.free(libc.malloc(1000))
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(vm_size_kib() - before)
"""


@pytest.mark.parametrize("mode", ["one", "default"])
def test_one_arena_keeps_a_thread_off_its_own_heap(mode: str) -> None:
    """glibc reserves a 64 MiB heap for a thread's own arena; with one_arena() the thread uses the main one."""
    grown_kib = _kib_from_child(THREAD_ARENA, mode)
    if mode == "one":
        assert grown_kib < 32 * 1024  # the thread's stack only
    else:
        assert grown_kib >= 64 * 1024  # the control: a thread's arena reserves its 64 MiB heap


LARGE_BUFFERS = """
import ctypes
import sys
from pykeepalived.host.malloc_trim import map_large_allocations

def rss_anon_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))

if sys.argv[1] == "fixed":
    assert map_large_allocations()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
size = 4 << 20
def touched():
    block = libc.malloc(size)
    libc.memset(block, 1, size)
    return block
libc.free(touched())  # a first big buffer, freed: glibc's default raises its threshold past it
before = rss_anon_kib()
block = touched()  # the next one
pin = libc.malloc(64)  # something small after it on the heap
libc.free(block)
print(rss_anon_kib() - before)
libc.free(pin)
"""


@pytest.mark.parametrize("mode", ["fixed", "default"])
def test_large_buffers_go_back_when_freed(mode: str) -> None:
    """A 4 MiB buffer freed leaves the resident set with a fixed mmap threshold, and stays by glibc's default."""
    kept_kib = _kib_from_child(LARGE_BUFFERS, mode)
    if mode == "fixed":
        assert kept_kib < 1024
    else:
        assert kept_kib >= 3 * 1024  # the control: the buffer came from the heap and stays resident
