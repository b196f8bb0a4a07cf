"""The root of pykeepalived's own exceptions, in a module of its own.

Every package raises subclasses of `PyKeepalivedError` and `cli.py` turns them
into one line and an exit code. It sits below every layer (it imports
nothing), so that a kernel adapter or a checker can define its errors
without importing the configuration package.
"""

from __future__ import annotations


class PyKeepalivedError(Exception):
    """Base of every exception pykeepalived raises on purpose."""


class ReloadError(PyKeepalivedError):
    """A reload that was refused or failed: the running configuration stays as it was.

    `problems` holds one line per reason (config errors as FILE:LINE: ...),
    so that the daemon can log each and `pykeepalived reload` can print them.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems else [message]
