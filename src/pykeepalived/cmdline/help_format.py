"""argparse's help formatter, sized to the terminal without importing shutil.

argparse makes a formatter for every option it is given (to check the
option's metavar) and each one asks `shutil.get_terminal_size()`; importing
shutil (with bz2 and lzma) is about 1.5 ms of every command's start-up.
This one takes the width by shutil's rules: $COLUMNS if it is a positive
number, else the size of the terminal on stdout, else 80 columns.
"""

from __future__ import annotations

import argparse
import os
import sys

FALLBACK_COLUMNS = 80


def terminal_columns() -> int:
    """The columns shutil.get_terminal_size() would report."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return FALLBACK_COLUMNS
    try:
        return os.get_terminal_size(stdout.fileno()).columns or FALLBACK_COLUMNS
    except (AttributeError, ValueError, OSError):
        return FALLBACK_COLUMNS


class HelpFormatter(argparse.HelpFormatter):
    """argparse.HelpFormatter with the width argparse itself would choose (terminal columns - 2)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)
