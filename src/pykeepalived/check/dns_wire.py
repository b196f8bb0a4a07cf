"""DNS_CHECK's messages: the query keepalived sends and its verdict on a reply, without sockets.

keepalived sends one UDP query (recursion desired, no EDNS, class IN) for the
checker's `name` and `type` and judges only the reply's header:

* a datagram too short for a header, with another id, or without the QR
  (response) bit is not the reply: it keeps waiting, until connect_timeout;
* a reply whose RCODE is not NOERROR is a failure;
* any other reply is a success: an empty answer section is fine (NOERROR
  with no data still shows a working server).

We add one check keepalived does not make: a reply that passes the header
tests must also parse as a whole DNS message, else it is a failure with the
parser's reason. A server sending a broken body is not healthy, and dnspython
raises a zoo of exception types on hostile input; catching them here means
the probe itself can never raise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from ..errors import PyKeepalivedError

HEADER_LEN = 12
QR = 0x8000
RCODE_MASK = 0x000F


class DnsQueryError(PyKeepalivedError):
    """The checker's name or type cannot be put in a query; the message says which and why."""


@dataclass(frozen=True)
class Ignored:
    """Not the reply to our query: keep waiting. `reason` shows up if the wait then times out."""

    reason: str


@dataclass(frozen=True)
class DnsVerdict:
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class DnsQuery:
    """A query's wire form with its id left to `wire(query_id)`, so that each attempt uses a fresh id."""

    name: str
    query_type: str
    template: bytes

    def wire(self, query_id: int) -> bytes:
        return struct.pack("!H", query_id & 0xFFFF) + self.template[2:]


def build_query(name: str, query_type: str) -> DnsQuery:
    """The query for `name` (relative names are taken from the root, "" and "." are the root) and `query_type`."""
    try:
        qname = dns.name.from_text(name or ".")
        rdtype = dns.rdatatype.from_text(query_type)
        message = dns.message.make_query(qname, rdtype, dns.rdataclass.IN, use_edns=False)
        message.id = 0
        template = message.to_wire()
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise DnsQueryError(f"DNS_CHECK cannot query {name!r} type {query_type!r}: {exc}") from None
    return DnsQuery(name=qname.to_text(), query_type=dns.rdatatype.to_text(rdtype), template=template)


def check_reply(query_id: int, data: bytes) -> DnsVerdict | Ignored:
    """keepalived's verdict on one received datagram (see the module docstring)."""
    if len(data) < HEADER_LEN:
        return Ignored(f"{len(data)}-byte datagram, too short for a DNS header")
    reply_id, flags = struct.unpack_from("!HH", data)
    if reply_id != query_id:
        return Ignored(f"reply id {reply_id} is not the query's {query_id}")
    if not flags & QR:
        return Ignored("a query, not a response")
    rcode = flags & RCODE_MASK
    if rcode != dns.rcode.NOERROR:
        return DnsVerdict(False, f"server answered {dns.rcode.to_text(rcode)} (rcode {rcode})")
    try:
        dns.message.from_wire(data)
    except Exception as exc:  # dnspython's parser raises many types on bad input; all mean "malformed"
        return DnsVerdict(False, f"malformed reply: {str(exc) or type(exc).__name__}")
    return DnsVerdict(True)
