"""config/glibc_random.py gives glibc's own random() sequence after srandom(seed)."""

from __future__ import annotations

import ctypes

import pytest

from pykeepalived.config.glibc_random import GlibcRandom


@pytest.mark.parametrize("seed", [0, 1, 42, 20261202, 2**31 - 1, 2**31, 3_000_000_000, 2**32 - 1])
def test_sequence_equals_libc(seed: int) -> None:
    libc = ctypes.CDLL(None)
    libc.srandom(ctypes.c_uint(seed))
    expected = [libc.random() for _ in range(400)]
    ours = GlibcRandom(seed)
    assert [ours.random() for _ in range(400)] == expected


def test_between_is_keepalived_formula() -> None:
    a, b = GlibcRandom(7), GlibcRandom(7)
    assert [a.between(20, 250) for _ in range(20)] == [b.random() % 231 + 20 for _ in range(20)]
