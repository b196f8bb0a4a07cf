"""The root of pykeepalived's own exceptions, in a module of its own.

Every package raises subclasses of `PyKeepalivedError` and `cli.py` turns them
into one line and an exit code. It sits below every layer (it imports
nothing), so that a kernel adapter or a checker can define its errors
without importing the configuration package.
"""

from __future__ import annotations


class PyKeepalivedError(Exception):
    """Base of every exception pykeepalived raises on purpose."""
