"""docs/configuration.md lists exactly the keywords the parser registers, with their status."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.config.keyword_table import render
from pykeepalived.config.registry import walk
from pykeepalived.config.schema import ROOT

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_keyword_table_matches_the_registry() -> None:
    assert DOC.read_text() == render(), (
        "regenerate: python -m pykeepalived.config.keyword_table > docs/configuration.md")


# keepalived 2.2.7's keyword list, in the project's shared material next to the clone (../shared).
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "keepalived-parser-keywords.txt"


def reference_keywords(path: Path) -> set[str]:
    """The keywords listed in `path`; a missing list fails the test rather than skipping it.

    The list sits beside every clone CI makes (../shared), so its absence means
    a moved or renamed file, and a skip would hide the lost coverage as the
    early return here once did.
    """
    if not path.is_file():
        pytest.fail(f"{path}: keepalived's keyword list is missing (../shared/reference beside the clone); "
                    "without it nothing checks that we register every keyword keepalived does")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def test_registry_covers_keepalived_keywords() -> None:
    ours = {kw.name for _, kw in walk(ROOT)}
    theirs = reference_keywords(REFERENCE)
    missing = sorted(theirs - ours)
    assert missing == [], f"keywords keepalived registers that we do not: {missing}"


def test_a_missing_keyword_list_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="keyword list is missing"):
        reference_keywords(tmp_path / "keepalived-parser-keywords.txt")
