"""Reading configuration files from the local disk for the config lexer."""

from __future__ import annotations

import glob
import os

from ..config.lexer import FileProblem
from ..config.memfs import expand_braces

MAX_CONFIG_BYTES = 64 * 1024 * 1024


class LocalFileSystem:
    """The real file system, with keepalived's glob rules (braces, sorted matches)."""

    def read_text(self, path: str) -> str:
        try:
            if os.path.isdir(path):
                raise FileProblem("is a directory")
            with open(path, "rb") as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise FileProblem(exc.strerror or str(exc)) from None
        if len(data) > MAX_CONFIG_BYTES:
            raise FileProblem(f"larger than {MAX_CONFIG_BYTES} bytes")
        return data.decode("utf-8", errors="replace")

    def glob(self, pattern: str) -> list[str]:
        found: list[str] = []
        try:
            for pat in expand_braces(pattern):
                found.extend(sorted(glob.glob(pat)))
        except (OSError, ValueError) as exc:
            raise FileProblem(str(exc)) from None
        return list(dict.fromkeys(p for p in found if not os.path.isdir(p)))
