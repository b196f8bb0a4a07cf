"""global_defs `include_check [[+|-]read|match|wildcard_match|brace_match ...]`: what plain `include` insists on.

keepalived 2.2.7 (lib/parser.c include_check_set) keeps a set of checks that
every later `include` adds to its own variant's: R (an unreadable file, a
directory, a non-regular file is an error, not a skipped warning), M (a named
file that is missing), W (a wildcard that matches nothing), B (a missing
alternative of a `{a,b}` pattern). With no word it is all four; a first word
without a sign sets `read` plus that check; `+word` adds, `-word` removes; a
second unsigned word is an error ("Duplicate include_check"), an unknown one
too. The value set inside an included file lasts until that file's include
ends (keepalived restores it when the glob closes). Pure: letters only; the
lexer (config/lexer.py) applies them as it reads includes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ALL = "RMWB"
_NAMES = {"read": "R", "match": "M", "wildcard_match": "W", "brace_match": "B"}


@dataclass
class IncludeChecks:
    """The current checks, shared by the lexer (which reads them) and the parser (whose handler sets them)."""

    value: str = ""


def apply_include_check(current: str, words: Sequence[str]) -> tuple[str, list[str]]:
    """The checks after an `include_check` line with these words, and keepalived's complaints."""
    if not words:
        return ALL, []
    value = set(current)
    problems: list[str] = []
    for i, word in enumerate(words):
        sign = word[0] if word[:1] in ("+", "-") else ""
        name = word[1:] if sign else word
        if not sign:
            if i:
                problems.append(f"Duplicate include_check '{word}' specified - ignoring")
                continue
            value = set()
        flag = _NAMES.get(name)
        if flag is None:
            problems.append(f"Unknown include_check type '{name}' - ignoring")
            continue
        if sign == "+":
            value.add(flag)
        elif sign == "-":
            value.discard(flag)
        else:
            value = {"R", flag}
    return "".join(c for c in ALL if c in value), problems
