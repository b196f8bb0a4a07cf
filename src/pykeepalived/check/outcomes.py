"""What an observation means, keepalived's way: MISC_CHECK exit codes, FILE_CHECK values, UDP_CHECK replies.

Sans-IO on purpose: the rules below are where keepalived has quirks worth
keeping (misc_dynamic's "status - 2", track files read with strtol, reply
patterns matched only up to the shorter length), and they are easiest to
pin down with unit tests when no process, file or socket is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

from .probe import ProbeResult

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# keepalived's IPVS_WEIGHT_FAULT: a track file result this low puts a real server's checker down
WEIGHT_FAULT = INT32_MIN
# keepalived reads at most this many bytes of a track file
TRACK_FILE_READ_MAX = 127
_INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------- MISC_CHECK
def misc_verdict(returncode: int | None, *, dynamic: bool, rs_weight: int, stopped_by_us: bool = False,
                 timeout_s: float | None = None) -> ProbeResult:
    """One script run's result from its exit (returncode as asyncio gives it: negative = killed by that signal).

    Success is exit 0, or with misc_dynamic 2..255; the weight offset is then
    status - 2 - the real server's configured weight (0 for exit 0), which
    makes the effective weight status - 2 when this is its only weighted
    checker. keepalived judges by how the script ended, not by whether it
    overran: a script that catches SIGTERM and exits 0 still passes. Any
    failure zeroes the offset, as keepalived does on going down.
    """
    if returncode is None:
        return ProbeResult(False, "did not run", 0)
    if returncode < 0:
        if stopped_by_us:
            after = f" after {timeout_s:g}s" if timeout_s is not None else ""
            return ProbeResult(False, f"timed out{after}", 0)
        return ProbeResult(False, f"failed (due to signal {-returncode})", 0)
    if returncode == 0:
        return ProbeResult(True, "succeeded", 0)
    if dynamic and 2 <= returncode <= 255:
        return ProbeResult(True, f"succeeded (weight {returncode - 2})", returncode - 2 - rs_weight)
    return ProbeResult(False, f"failed (exited with status {returncode})", 0)


# --------------------------------------------------------------------------- FILE_CHECK
def parse_track_file_value(data: bytes) -> int | None:
    """The number keepalived reads from a track file; None when it would ignore the read (keep the last value).

    Like keepalived: the first 127 bytes through C strtol in base 0 (leading
    blanks, a sign, 0x hex, 0 octal, trailing text ignored, no digits = 0);
    an empty file is 0; a number outside a C long, or outside
    [-2^31, 2^31] (sic: one more than INT32_MAX passes), is ignored.
    """
    value = _strtol_base0(data[:TRACK_FILE_READ_MAX].split(b"\0", 1)[0].decode("latin-1"))
    if value is None or not INT32_MIN <= value <= INT32_MAX + 1:
        return None
    return value


def _strtol_base0(text: str) -> int | None:
    """C strtol(text, NULL, 0) on a 64-bit long; None where it would set ERANGE."""
    i = 0
    while i < len(text) and text[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < len(text) and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    base, digits = 10, "0123456789"
    if text[i:i + 2].lower() == "0x" and i + 2 < len(text) and text[i + 2].lower() in "0123456789abcdef":
        base, digits, i = 16, "0123456789abcdef", i + 2
    elif text[i:i + 1] == "0":
        base, digits = 8, "01234567"
    end = i
    while end < len(text) and text[end].lower() in digits:
        end += 1
    if end == i:
        return 0
    value = sign * int(text[i:end], base)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return None
    return value


def file_verdict(value: int, weight: int, reverse: bool) -> ProbeResult:
    """FILE_CHECK's state from the file's value, as keepalived's real-server track-file rules have it.

    Weight 0: a non-zero value is down, zero is up (reverse swaps them), and
    the weight is left alone. Otherwise the value times the weight (negated
    with reverse), clamped to 32 bits, is the checker's weight offset; only
    a result at or below -2^31 puts the checker down (keepalived's
    IPVS_WEIGHT_FAULT for real servers, unlike VRRP's -254).
    """
    if weight == 0:
        if (value != 0) != reverse:
            what = "non-zero" if not reverse else "zero"
            flags = " reverse" if reverse else ""
            return ProbeResult(False, f"track file value {value} is {what} (weight 0{flags})", 0)
        return ProbeResult(True, f"track file value {value}", 0)
    product = max(INT32_MIN, min(INT32_MAX, value * weight * (-1 if reverse else 1)))
    if product <= WEIGHT_FAULT:
        return ProbeResult(False, f"track file value {value} x weight {weight}{' reverse' if reverse else ''} "
                                  f"is at the fault level", 0)
    return ProbeResult(True, f"track file value {value} (weight offset {product})", product)


# --------------------------------------------------------------------------- UDP_CHECK
# keepalived's filler for payloads it makes up (UDP_CHECK without payload, PING_CHECK)
FILLER = b"keepalived check - "


def filler(length: int) -> bytes:
    """keepalived's set_buf(): "keepalived check - " repeated to length bytes."""
    return (FILLER * (length // len(FILLER) + 1))[:length]


# UDP_CHECK without payload sends keepalived's 32-byte filler
DEFAULT_UDP_PAYLOAD = filler(32)


@dataclass(frozen=True)
class ReplyPattern:
    """require_reply's HEX_STR: bytes to compare, and per byte the bits to ignore (X / x nibbles)."""

    data: bytes
    ignore: bytes


def parse_reply_pattern(text: str) -> ReplyPattern | None:
    """keepalived's free-form hex: blank-separated groups, two digits a byte, a lone digit its own byte.

    "Ab12f 3 456" is AB 12 0F 03 45 06; X or x is a nibble that matches
    anything. None when the text is not valid (keepalived then checks no
    content, only that a reply came).
    """
    data, ignore = bytearray(), bytearray()
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i == len(text):
            break
        first = _nibble(text[i])
        if first is None:
            return None
        i += 1
        value, mask = first
        if i < len(text) and text[i] != " ":
            second = _nibble(text[i])
            if second is None:
                return None
            i += 1
            value, mask = (value << 4) | second[0], (mask << 4) | second[1]
        data.append(value)
        ignore.append(mask)
    return ReplyPattern(bytes(data), bytes(ignore)) if data else None


def _nibble(ch: str) -> tuple[int, int] | None:
    """(value, ignored bits) of one pattern character."""
    if ch in "xX":
        return 0, 0x0F
    if ch in "0123456789abcdefABCDEF":
        return int(ch, 16), 0
    return None


def udp_reply_matches(reply: bytes, pattern: ReplyPattern | None, min_length: int, max_length: int) -> bool:
    """Whether a reply passes require_reply, as keepalived 2.2.7's code (not its man page) decides.

    Without a pattern any reply passes - the length limits are only checked
    alongside a pattern. With one, the length must lie in [min, max] and the
    reply must match the pattern over the shorter of the two lengths.
    """
    if pattern is None:
        return True
    if not min_length <= len(reply) <= max_length:
        return False
    return all((got ^ want) & ~skip & 0xFF == 0 for got, want, skip in zip(reply, pattern.data, pattern.ignore))
