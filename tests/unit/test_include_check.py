"""global_defs include_check (config/include_check.py and the lexer): keepalived 2.2.7's rules."""

from __future__ import annotations

from pykeepalived.config import read_config
from pykeepalived.config.errors import Severity
from pykeepalived.config.include_check import apply_include_check
from pykeepalived.config.memfs import MemoryFileSystem


def test_words() -> None:
    assert apply_include_check("", []) == ("RMWB", [])
    assert apply_include_check("", ["match"]) == ("RM", [])
    assert apply_include_check("RMWB", ["-brace_match", "-read"]) == ("MW", [])
    assert apply_include_check("", ["+wildcard_match"]) == ("W", [])
    assert apply_include_check("R", ["match", "brace_match"]) == \
        ("RM", ["Duplicate include_check 'brace_match' specified - ignoring"])
    assert apply_include_check("", ["+sometimes"]) == ("", ["Unknown include_check type 'sometimes' - ignoring"])


def _errors(files: dict[str, str]) -> list[str]:
    result = read_config("/k.conf", MemoryFileSystem(files))
    return [d.message for d in result.diagnostics if d.severity is Severity.ERROR]


def test_applies_to_the_includes_after_it() -> None:
    early = "include /missing-a.conf\nglobal_defs {\n include_check\n}\n"
    assert _errors({"/k.conf": early}) == []
    late = "global_defs {\n include_check\n}\ninclude /missing-b.conf\n"
    assert _errors({"/k.conf": late}) == ["configuration files missing '/missing-b.conf'"]


def test_set_inside_an_include_ends_with_it() -> None:
    files = {"/k.conf": "include /inc.conf\ninclude /missing-c.conf\n",
             "/inc.conf": "global_defs {\n include_check\n}\ninclude /missing-d.conf\n"}
    assert _errors(files) == ["configuration files missing '/missing-d.conf'"]
