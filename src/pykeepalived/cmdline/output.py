"""The command's output edge: a reader that went away (`| head -1`) ends the command quietly.

Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError,
and the flush at interpreter exit would print "Exception ignored ..." too.
coreutils die of SIGPIPE without a word; the shell then reports 141 (128 +
SIGPIPE), which `run_quietly` returns. The daemon keeps SIGPIPE ignored: a
peer closing a socket must never kill it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that no later write or the flush at exit raises again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def run_quietly(command: Callable[[], int]) -> int:
    """Run a command and flush its output; a closed pipe ends it with 141 and no traceback."""
    try:
        code = command()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
