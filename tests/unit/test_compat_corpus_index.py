"""The compat corpus and config/differences.py name the same deliberate differences."""

from __future__ import annotations

from pathlib import Path

from pykeepalived.config.differences import DIFFERENCES
from tests.compat.test_keepalived_verdict import CORPUS, differs_key


def test_every_listed_difference_is_shown_by_a_corpus_config() -> None:
    used = {differs_key(p) for p in CORPUS} - {None}
    assert set(DIFFERENCES) <= used, f"listed but shown by no corpus config: {sorted(set(DIFFERENCES) - used)}"


def test_every_differs_line_names_a_listed_difference() -> None:
    unknown = {p.name: key for p in CORPUS if (key := differs_key(p)) is not None and key not in DIFFERENCES}
    assert not unknown, f"corpus configs name differences config/differences.py does not list: {unknown}"


def test_corpus_configs_have_unique_names() -> None:
    names = [Path(p).name for p in CORPUS]
    assert len(names) == len(set(names)), "two corpus configs share a file name; ids must stay unambiguous"
