"""Random bytes and mutated valid configs never raise anything but our own diagnostics."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykeepalived.config import read_config_text
from tests.conftest import samples_dir

VALID = (Path(__file__).parents[1] / "compat" / "valid_base.conf").read_text()
SAMPLE_TEXTS = [p.read_text() for p in sorted(samples_dir().glob("keepalived.conf.*"))] if samples_dir() else []
TOKENS = ["{", "}", "\"", "'", "$X=", "$X", "${X}", "@a ", "~SEQ(i, 1, 3) ", "include x", "\\", "#", "!",
          "-1", "999999999999", "0.0000001", "::1", "256.1.1.1", "weight", "fwmark", "\n", " "]


def check(text: str) -> None:
    result = read_config_text(text)
    for diag in result.diagnostics:
        assert diag.format()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    check(data.decode("utf-8", errors="replace"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([VALID, *SAMPLE_TEXTS]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.sampled_from(TOKENS)), max_size=8),
)
def test_mutated_configs_never_raise(base: str, edits: list[tuple[int, int, str]]) -> None:
    text = base
    for pos, cut, token in edits:
        pos %= len(text) + 1
        text = text[:pos] + token + text[pos + cut:]
    check(text)
