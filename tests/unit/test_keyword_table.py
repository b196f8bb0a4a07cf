"""docs/configuration.md lists exactly the keywords the parser registers, with their status."""

from __future__ import annotations

from pathlib import Path

from pykeepalived.config.keyword_table import render
from pykeepalived.config.registry import walk
from pykeepalived.config.schema import ROOT

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_keyword_table_matches_the_registry() -> None:
    assert DOC.read_text() == render(), (
        "regenerate: python -m pykeepalived.config.keyword_table > docs/configuration.md")


def test_registry_covers_keepalived_keywords() -> None:
    ours = {kw.name for _, kw in walk(ROOT)}
    reference = Path(__file__).parents[3] / "shared" / "reference" / "keepalived-parser-keywords.txt"
    if not reference.exists():
        return
    theirs = {line.strip() for line in reference.read_text().splitlines() if line.strip()}
    missing = sorted(theirs - ours)
    assert missing == [], f"keywords keepalived registers that we do not: {missing}"
