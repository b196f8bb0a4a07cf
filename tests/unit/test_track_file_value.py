"""A track file's value read as keepalived 2.2.7's strtol(text, NULL, 0) reads it."""

from __future__ import annotations

import pytest

from pykeepalived.host.track_files import parse_track_value


@pytest.mark.parametrize(("raw", "value"), [
    (b"12\n", 12), (b"  -5 apples", -5), (b"0x10", 16), (b"010", 8), (b"09", 0), (b"+7", 7),
    (b"abc", 0), (b"", 0), (b"0x", 0), (b"2147483648", 2**31), (b"-2147483648", -2**31),
])
def test_values(raw: bytes, value: int) -> None:
    assert parse_track_value(raw) == value


def test_out_of_range_is_refused() -> None:
    assert parse_track_value(b"2147483649") is None
    assert parse_track_value(b"-2147483649") is None
