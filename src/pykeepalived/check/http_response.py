"""HTTP_GET / SSL_GET without I/O: the request keepalived sends and how it judges the answer.

The probe (http.py) and `pykeepalived genhash` (genhash.py) both build their
request and read the answer through this module, so the digest genhash prints
is, byte for byte, the one the checker compares. Everything here is a pure
function of bytes and config, which is what lets the unit tests (and
Hypothesis) pin keepalived's rules down without a server.

keepalived's rules, as its checker applies them to one url (check_http.c and
lib/html.c in 2.2.7):

* The body starts after the first CRLF CRLF; an answer without one counts as
  "no data received" and fails.
* The status code is the three digits after the first space of the first
  line, followed by a space; anything else reads as status 0, which no
  status_code accepts. The default accepted set is 200-299, whether or not a
  digest is given.
* The digest is the MD5 of the body, cut at Content-Length when the header
  gives a readable one (genhash does the same, so the two agree).
* The regex is searched in the whole answer - status line and headers
  included, offsets counted from its first byte - because keepalived feeds
  the first read buffer, header and all, to PCRE2.

Checks run in keepalived's order - status, digest, regex - and the first that
fails is the reason.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # genhash imports this module: the config package (the whole reader) is not needed
    from ..config.model import UrlSpec

USER_AGENT = "KeepAliveClient"
END_OF_HEADER = b"\r\n\r\n"
DEFAULT_STATUS: tuple[tuple[int, int], ...] = ((200, 299),)
STATUS_MIN, STATUS_MAX = 100, 599
_SPACE = ord(" ")

# PCRE2 options with a Python `re` equivalent; the others are accepted and ignored (see `url_rule`).
REGEX_FLAGS = {
    "caseless": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "extended": re.VERBOSE,
}


class InvalidRule(ValueError):
    """A url block that cannot be checked (a regex `re` cannot compile); the message says why."""


# --------------------------------------------------------------------------- the request
def request_bytes(path: str, host_header: str, http_protocol: str = "1.0") -> bytes:
    """keepalived's request: HTTP/1.0 (or 1.1), its User-Agent, `Connection: close` for 1.0C and 1.1."""
    version = "1.1" if http_protocol == "1.1" else "1.0"
    close = "Connection: close\r\n" if http_protocol in ("1.0C", "1.1") else ""
    return (f"GET {path} HTTP/{version}\r\nUser-Agent: {USER_AGENT}\r\n{close}"
            f"Host: {host_header}\r\n\r\n").encode()


def host_header(virtualhost: str | None, address: str, port: int) -> str:
    """The Host value: the virtualhost as given, else `address:port` (IPv6 in brackets), port always written.

    keepalived writes the port even when it is 80 or 443, and never adds it to
    a virtualhost; servers that route on Host see exactly what they would see
    from keepalived.
    """
    if virtualhost:
        return virtualhost
    shown = f"[{address}]" if ":" in address else address
    return f"{shown}:{port}"


def pick_virtualhost(*candidates: str | None) -> str | None:
    """The first configured virtualhost (url, checker, real server, virtual server: most specific first)."""
    return next((c for c in candidates if c), None)


# --------------------------------------------------------------------------- the answer
@dataclass(frozen=True)
class Response:
    """A complete answer split at its end of header; `status` is 0 when the status line is unreadable."""

    raw: bytes
    body_start: int
    status: int
    content_length: int | None

    @property
    def head(self) -> bytes:
        return self.raw[: self.body_start]

    @property
    def body(self) -> bytes:
        return self.raw[self.body_start:]

    @property
    def digest_body(self) -> bytes:
        """What keepalived hashes: the body, cut at Content-Length when there is one."""
        return self.body if self.content_length is None else self.body[: self.content_length]

    @property
    def md5(self) -> str:
        return md5_hex(self.digest_body)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - keepalived's digest is MD5, not a security measure


def parse_status(raw: bytes) -> int:
    """The status code as keepalived reads it: after the first space of line one, three digits, then a space.

    `HTTP/1.1 200\\r\\n` (no reason phrase, no space) reads as 0, as in
    keepalived, where the server is then reported with a status code error.
    """
    line_end = raw.find(b"\r")
    if line_end < 0:
        line_end = len(raw)
    space = raw.find(b" ", 0, line_end)  # offsets, not slices of the line: thousands of answers a second
    if space < 0 or line_end - space < 5 or raw[space + 4] != _SPACE:
        return 0
    code = raw[space + 1:space + 4]
    return int(code) if code.isdigit() else 0


def parse_content_length(head: bytes) -> int | None:
    """The Content-Length value, or None when absent or not a plain number (then the whole body counts).

    keepalived looks for the exact spelling `Content-Length:`; header names are
    case-insensitive in HTTP, so we accept any case (a server sending
    `content-length` gets the same digest from genhash and from the checker).
    """
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            text = value.strip(b" \t")
            return int(text) if text.isdigit() else None
    return None


def split_response(raw: bytes) -> Response | None:
    """The answer split into header and body, or None when it has no end of header (keepalived: no data)."""
    end = raw.find(END_OF_HEADER)
    if end < 0:
        return None
    body_start = end + len(END_OF_HEADER)
    head = raw[:body_start]
    return Response(raw, body_start, parse_status(head), parse_content_length(head))


# --------------------------------------------------------------------------- one url's rule
@dataclass(frozen=True)
class UrlRule:
    """What one `url { }` block accepts, completed with keepalived's defaults."""

    path: str
    status: tuple[tuple[int, int], ...] = DEFAULT_STATUS
    digest: str | None = None
    regex: re.Pattern[bytes] | None = None
    regex_no_match: bool = False
    regex_min_offset: int = 0
    regex_max_offset: int | None = None  # last byte where a match may start
    # the codes `status` accepts, as a set: one lookup per answer rather than a walk over the ranges
    accepted: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepted", accepted_codes(self.status))


def url_rule(url: UrlSpec) -> UrlRule:
    """Complete a url block as keepalived's parser does; InvalidRule if the regex does not compile.

    Regexes are Python `re` patterns on bytes rather than PCRE2. They agree on
    the common syntax (classes, anchors, groups, lazy and possessive
    quantifiers, atomic groups, lookaround, backreferences); PCRE2-only
    constructs - `(?<name>...)` (write `(?P<name>...)`), `\\K`, `\\Q...\\E`,
    recursion `(?R)`, `\\p{...}` properties, callouts, backtracking verbs -
    fail to compile and the url then always fails with the compiler's message.
    Of `regex_options`, caseless, multiline, dotall and extended map to `re`
    flags; the rest (ungreedy, firstline, utf, ucp, ...) are ignored.
    `regex_stack` sizes PCRE2's JIT stack; Python's `re` has no such limit, so
    a match never fails for want of it. Like keepalived, offsets or
    regex_no_match without a regex are ignored, and a regex_min_offset beyond
    regex_max_offset drops both offsets.
    """
    path = url.path or "/"
    status = tuple(url.status_code) or DEFAULT_STATUS
    digest = url.digest.lower() if url.digest else None
    if not url.regex:
        return UrlRule(path, status, digest)
    flags = 0
    for option in url.regex_options:
        flags |= REGEX_FLAGS.get(option, 0)
    try:
        pattern = re.compile(url.regex.encode(), flags)
    except re.error as exc:
        raise InvalidRule(f"invalid regex {url.regex!r}: {exc}") from None
    low, high = url.regex_min_offset or 0, url.regex_max_offset
    if high is not None and low > high:
        low, high = 0, None
    return UrlRule(path, status, digest, pattern, url.regex_no_match, low, high)


def status_accepted(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    """keepalived keeps a bitmap of 100-599: a code outside it is never accepted."""
    if not STATUS_MIN <= status <= STATUS_MAX:
        return False
    return any(lo <= status <= hi for lo, hi in ranges)


@functools.lru_cache(maxsize=256)
def accepted_codes(ranges: tuple[tuple[int, int], ...]) -> frozenset[int]:
    """status_accepted as a set, one per distinct `status_code` list: a set of 100 codes is about 4 KiB, and a
    thousand urls with the default 200-299 share one."""
    return frozenset(code for lo, hi in ranges for code in range(max(lo, STATUS_MIN), min(hi, STATUS_MAX) + 1))


def format_ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return " ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def regex_found(rule: UrlRule, raw: bytes) -> bool:
    """Whether the regex matches the whole answer, starting at or after min_offset and at or before max_offset."""
    if rule.regex is None:
        return False
    found = rule.regex.search(raw, rule.regex_min_offset)
    return found is not None and (rule.regex_max_offset is None or found.start() <= rule.regex_max_offset)


def judge(rule: UrlRule, raw: bytes, where: str) -> str | None:
    """None when the answer passes the url's checks, else the reason (status, then digest, then regex).

    split_response's reading, without its Response: the checker judges
    thousands of answers a second, and Content-Length matters only to a
    digest.
    """
    end = raw.find(END_OF_HEADER)
    if end < 0:
        got = f"{len(raw)} bytes without an end of header" if raw else "nothing"
        return f"no HTTP answer from {where}: received {got}"
    status = parse_status(raw)  # the first line is the head's: the end of header comes after it
    if status not in rule.accepted:  # status_accepted(status, rule.status), read from a set
        shown = str(status) if status else repr(raw.split(b"\r\n", 1)[0][:60])
        return f"HTTP status code error to {where}: got {shown}, expected {format_ranges(rule.status)}"
    if rule.digest is not None:
        body_start = end + len(END_OF_HEADER)
        digest = Response(raw, body_start, status, parse_content_length(raw[:body_start])).md5
        if digest != rule.digest:
            return f"MD5 digest error to {where}: expected {rule.digest}, got {digest}"
    if rule.regex is not None and regex_found(rule, raw) == rule.regex_no_match:
        outcome = "matched (regex_no_match)" if rule.regex_no_match else "did not match"
        return f"regex error to {where}: {rule.regex.pattern.decode(errors='replace')!r} {outcome}"
    return None
