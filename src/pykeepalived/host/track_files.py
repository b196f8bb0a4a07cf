"""track_file's files: `init_file` writes them at start, and the value is read as keepalived reads it.

keepalived creates the file with the init value (default 0) when it does not
exist, or always with `overwrite` (only a regular file; never while testing
the configuration); a file it cannot open counts as 0, and one holding a
number it cannot take keeps the last value.
"""

from __future__ import annotations

import logging
import os
import stat

from ..config.model import KeepalivedConfig, TrackFile
from .private_files import UnsafeFileError, write_private

log = logging.getLogger("pykeepalived")
READ_BYTES = 127  # keepalived reads one 128-byte buffer


def parse_track_value(raw: bytes) -> int | None:
    """A track file's value as keepalived 2.2.7 reads it: strtol(text, NULL, 0).

    Leading blanks, a sign, then a number in C's bases (0x.. hex, 0.. octal,
    else decimal) up to the first other character; no number at all is 0.
    None (keep the last value, keepalived logs "Invalid number") when it is
    outside -2**31 .. 2**31.
    """
    text = raw.decode("ascii", errors="replace").lstrip(" \t\n\v\f\r")
    sign = 1
    if text[:1] in ("+", "-"):
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    base, digits = 10, "0123456789"
    if text[:2].lower() == "0x" and text[2:3].lower() in tuple("0123456789abcdef"):
        base, digits, text = 16, "0123456789abcdef", text[2:]
    elif text[:1] == "0":
        base, digits = 8, "01234567"
    end = 0
    while end < len(text) and text[end].lower() in digits:
        end += 1
    value = sign * int(text[:end], base) if end else 0
    if value < -2**31 or value > 2**31:
        return None
    return value


def init_track_file(tf: TrackFile) -> None:
    if not tf.init_file or not tf.file:
        return
    try:
        st = os.stat(tf.file)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        log.error("Unable to initialise track file %s: %s", tf.name, exc)
        return
    if st is not None:
        if not tf.init_overwrite:
            return
        if not stat.S_ISREG(st.st_mode):
            log.error("Cannot initialise track file %s - it is not a regular file", tf.name)
            return
    try:
        write_private(tf.file, f"{tf.init_value or 0}\n")  # 0600, as keepalived under its umask
    except (OSError, UnsafeFileError) as exc:
        log.error("Unable to initialise track file %s: %s", tf.name, exc)


def init_track_files(config: KeepalivedConfig) -> None:
    """Every track_file's init_file, as keepalived does once the configuration is read."""
    for tf in config.track_files.values():
        init_track_file(tf)


def read_track_file(path: str | None, last: int | None = None) -> int:
    """The file's value now; `last` (or 0) when the file holds a number keepalived would not take."""
    if not path:
        return 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        raw = os.read(fd, READ_BYTES)
    except OSError:
        raw = b""
    finally:
        os.close(fd)
    if not raw:
        return 0
    value = parse_track_value(raw)
    if value is None:
        log.info("Invalid number read from %s - ignoring", path)
        return last if last is not None else 0
    return value
