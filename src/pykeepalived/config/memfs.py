"""An in-memory FileSystem: configurations built by tests and by fuzzers."""

from __future__ import annotations

import fnmatch

from .lexer import FileProblem, NotRegularFile


def expand_braces(pattern: str) -> list[str]:
    """`a{b,c}d` -> [abd, acd], nested braces included (glob's GLOB_BRACE)."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth = 0
    for end in range(start, len(pattern)):
        if pattern[end] == "{":
            depth += 1
        elif pattern[end] == "}":
            depth -= 1
            if depth == 0:
                break
    else:
        return [pattern]
    inner = pattern[start + 1 : end]
    options: list[str] = []
    depth = 0
    current = ""
    for ch in inner:
        if ch == "," and depth == 0:
            options.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    options.append(current)
    out: list[str] = []
    for option in options:
        out.extend(expand_braces(pattern[:start] + option + pattern[end + 1 :]))
    return out


class MemoryFileSystem:
    """Files held in a dict of path -> text.

    `special` names paths that exist but are not regular non-executable files,
    each with why (as the disk reader says it: "a directory", "not a regular
    non-executable file (a FIFO)"), so that tests can build what keepalived
    skips without making FIFOs.
    """

    def __init__(self, files: dict[str, str], special: dict[str, str] | None = None) -> None:
        self.files = dict(files)
        self.special = dict(special or {})

    def read_text(self, path: str) -> str:
        if path in self.special:
            raise NotRegularFile(self.special[path])
        if path not in self.files:
            raise FileProblem("no such file")
        return self.files[path]

    def glob(self, pattern: str) -> list[str]:
        found: list[str] = []
        for pat in expand_braces(pattern):
            found.extend(sorted(p for p in (*self.files, *self.special) if fnmatch.fnmatchcase(p, pat)))
        return list(dict.fromkeys(found))
