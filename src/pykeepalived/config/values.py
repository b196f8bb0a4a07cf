"""Converters from configuration words to typed values.

Each converter returns the value or raises `ValueProblem` with a message that
names the bad text and the rule it broke; the parser adds the file:line and
the keyword. Ranges follow keepalived 2.2.7's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import TypeVar

from .errors import ValueProblem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

T = TypeVar("T")

_TRUE = {"on", "true", "yes"}
_FALSE = {"off", "false", "no"}
_DECIMAL_RE = re.compile(r"^[0-9]*(\.[0-9]*)?$")


def to_bool(word: str) -> bool:
    low = word.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueProblem(f"invalid boolean '{word}' (use on/off, true/false or yes/no)")


def to_int(word: str, lo: int, hi: int) -> int:
    try:
        value = int(word, 10)
    except ValueError:
        raise ValueProblem(f"invalid number '{word}'") from None
    if value < lo or value > hi:
        raise ValueProblem(f"number '{word}' outside range [{lo}, {hi}]")
    return value


def to_decimal(word: str, lo: float, hi: float, places: int = 6) -> float:
    """A non-negative decimal with at most `places` digits after the point."""
    if word.startswith("-"):
        raise ValueProblem(f"negative number '{word}'")
    if not word or word == "." or not _DECIMAL_RE.match(word):
        raise ValueProblem(f"invalid number '{word}'")
    if "." in word and len(word.split(".", 1)[1]) > places:
        raise ValueProblem(f"number '{word}' has too many decimal places")
    value = float(word)
    if value < lo or value > hi:
        raise ValueProblem(f"number '{word}' outside range [{lo:g}, {hi:g}]")
    return value


def to_timer(word: str, lo: float = 0.0, hi: float = 2**31 / 1e6 * 1e6) -> float:
    """Seconds with microsecond resolution, as keepalived's read_timer()."""
    return to_decimal(word, lo, hi, 6)


def to_ip(word: str) -> IPAddress:
    try:
        return ipaddress.ip_address(word)
    except ValueError:
        raise ValueProblem(f"invalid IP address '{word}'") from None


def to_ip_interface(word: str) -> IPInterface:
    """An address with an optional /prefix (a host address, not a network)."""
    try:
        if "/" in word:
            addr, plen = word.split("/", 1)
            ip = ipaddress.ip_address(addr)
            if not plen.isdigit() or int(plen) > ip.max_prefixlen:
                raise ValueError
        return ipaddress.ip_interface(word)
    except ValueError:
        raise ValueProblem(f"invalid IP address '{word}'") from None


def to_network(word: str) -> IPNetwork:
    """An address/prefix, host bits allowed (keepalived masks them)."""
    try:
        if "/" in word:
            addr, plen = word.split("/", 1)
            ip = ipaddress.ip_address(addr)
            if not plen.isdigit() or int(plen) > ip.max_prefixlen:
                raise ValueError
        return ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise ValueProblem(f"invalid IP address '{word}'") from None


def to_port(word: str) -> int:
    return to_int(word, 0, 65535)


def to_hex_bytes(word: str) -> bytes:
    text = word[2:] if word.lower().startswith("0x") else word
    if len(text) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", text):
        raise ValueProblem(f"invalid hex string '{word}'")
    return bytes.fromhex(text)


def to_choice(word: str, choices: Mapping[str, T], what: str) -> T:
    """One of a fixed set of words (case-insensitive); returns the canonical spelling."""
    canonical = choices.get(word.lower())
    if canonical is None:
        allowed = "|".join(sorted({str(v) for v in choices.values()}))
        raise ValueProblem(f"invalid {what} '{word}' (expected {allowed})")
    return canonical


UMASK_BITS = {
    f"I{perm}{who}": bit
    for who, shift in (("USR", 6), ("GRP", 3), ("OTH", 0))
    for perm, bit in (("R", 4 << shift), ("W", 2 << shift), ("X", 1 << shift))
}


def parse_umask(words: list[str]) -> int:
    """global_defs `umask`: a number (hex, octal with a leading 0, or decimal) or I{R,W,X}{USR,GRP,OTH} bits
    joined by '|'.

    Raises ValueError with a message that names the bad word.
    """
    text = "".join(words).strip()
    if not text:
        raise ValueError("umask needs a value")
    if text[0].isdigit():
        try:
            if text.lower().startswith("0x"):
                value = int(text, 16)
            elif len(text) > 1 and text.startswith("0"):
                value = int(text, 8)
            else:
                value = int(text, 10)
        except ValueError:
            raise ValueError(f"umask '{text}' is not a number") from None
        if not 0 <= value <= 0o777:
            raise ValueError(f"umask '{text}' is out of range 0..0777")
        return value
    value = 0
    for part in text.split("|"):
        bit = UMASK_BITS.get(part.upper())
        if bit is None:
            raise ValueError(f"umask bit '{part}' is not one of {', '.join(sorted(UMASK_BITS))}")
        value |= bit
    return value
