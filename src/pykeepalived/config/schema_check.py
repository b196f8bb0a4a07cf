"""The checker side: virtual_server(_group), real_server, sorry_server and the checkers."""

from __future__ import annotations

import ipaddress
from typing import Any

from . import handlers as h
from .errors import ValueProblem
from .lexer import Segment
from .model import (
    BfdCheck,
    CheckerBase,
    DnsCheck,
    FileCheck,
    HttpCheck,
    KeepalivedConfig,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SorryServer,
    SslContext,
    TcpCheck,
    UdpCheck,
    UrlSpec,
    VirtualServer,
    VirtualServerGroup,
    VirtualServerGroupEntry,
)
from .context import ParseContext
from .registry import Block, LineHandler, Status
from .values import to_choice, to_int, to_ip, to_port
from .vocabulary import FAMILY_WORDS, LB_KINDS, PROTOCOLS, SCHEDULER_NAMES, CheckerKind, Family, LbKind, Scheduler

# `twos` is read before this table, so that the error for a bad word lists the 2.2.7 schedulers only
SCHEDULERS: dict[str, Scheduler] = {s: s for s in SCHEDULER_NAMES if s != "twos"}
SCHED_FLAGS = ("hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback")
LVS_METHODS = LB_KINDS
DNS_TYPES = {t.lower(): t for t in ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA")}

SSL_BLOCK = Block("SSL", SslContext)
VS_GROUP = Block("virtual_server_group", VirtualServerGroup)
VIRTUAL_SERVER = Block("virtual_server", VirtualServer)
REAL_SERVER = Block("real_server", RealServer)
TCP_CHECK = Block("TCP_CHECK", TcpCheck)
HTTP_CHECK = Block("HTTP_GET / SSL_GET", HttpCheck)
URL_BLOCK = Block("url", UrlSpec)
SMTP_CHECK = Block("SMTP_CHECK", SmtpCheck)
SMTP_HOST = Block("SMTP_CHECK host", CheckerBase)
DNS_CHECK = Block("DNS_CHECK", DnsCheck)
MISC_CHECK = Block("MISC_CHECK", MiscCheck)
FILE_CHECK = Block("FILE_CHECK", FileCheck)
PING_CHECK = Block("PING_CHECK", PingCheck)
UDP_CHECK = Block("UDP_CHECK", UdpCheck)
BFD_CHECK = Block("BFD_CHECK", BfdCheck)


# --------------------------------------------------------------------------- SSL
def _open_ssl(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> SslContext:
    if config.ssl is not None:  # keepalived 2.2.7 reports the second block and uses it in place of the first
        ctx.error(seg, "SSL context already specified - replacing", "SSL")
    config.ssl = SslContext(location=seg.location)
    return config.ssl


for _name, _summary in [
    ("password", "private key password"),
    ("ca", "CA file"),
    ("certificate", "client certificate"),
    ("key", "client key"),
]:
    SSL_BLOCK.line(_name, h.text(_name), _summary)


# --------------------------------------------------------------------------- virtual_server_group
def _open_vsg(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> VirtualServerGroup | None:
    if len(seg.words) < 2:
        ctx.error(seg, "virtual_server_group needs a name")
        return None
    name = seg.words[1]
    group = VirtualServerGroup(name=name, location=seg.location)
    if name in config.virtual_server_groups:
        # keepalived 2.2.7 keeps both and every service finds the first: the second is read and dropped
        ctx.warn(seg, f"virtual_server_group {name} is defined twice - services use the first definition")
        return group
    config.virtual_server_groups[name] = group
    return group


def _close_vsg(ctx: ParseContext, group: VirtualServerGroup) -> None:
    families = {e.address.version for e in group.entries if e.address is not None}
    problem = None
    if not group.entries:
        problem = f"virtual server group {group.name} has no entries - removing"
    elif families == {4, 6} and any(e.kind == "fwmark" and e.family is None for e in group.entries):
        problem = f"virtual server group {group.name} cannot have IPv4, IPv6 and fwmark without family - removing"
    if problem is not None:
        ctx.error(ctx.close_location or group.location, problem, "virtual_server_group")
        if ctx.config.virtual_server_groups.get(group.name) is group:
            del ctx.config.virtual_server_groups[group.name]


def parse_vsg_entry(seg: Segment) -> VirtualServerGroupEntry:
    """`IP [PORT]`, `A.B.C.D-E [PORT]`, `IP/len [PORT]` or `fwmark N [inet|inet6]`."""
    w = seg.words
    if w[0] == "fwmark":
        if len(w) < 2:
            raise ValueProblem("'fwmark' needs a value")
        entry = VirtualServerGroupEntry("fwmark", fwmark=to_int(w[1], 0, 2**32 - 1), location=seg.location)
        if len(w) > 2:
            entry.family = FAMILY_WORDS.get(w[2])
            if entry.family is None:
                raise ValueProblem(f"unexpected '{w[2]}' (expected inet or inet6)")
        return entry
    addr_text = w[0]
    entry = VirtualServerGroupEntry("address", location=seg.location)
    if "/" in addr_text:
        base, plen = addr_text.split("/", 1)
        entry.address = to_ip(base)
        entry.prefix_len = to_int(plen, 0, entry.address.max_prefixlen)
        entry.kind = "range"
        host_bits = (1 << (entry.address.max_prefixlen - entry.prefix_len)) - 1
        if int(entry.address) & host_bits:
            raise ValueProblem(f"Address mask bits not empty - {addr_text} - skipping")
    elif "-" in addr_text:
        base, last = addr_text.rsplit("-", 1)
        entry.address = to_ip(base)
        entry.kind = "range"
        if entry.address.version == 4:
            octets = str(entry.address).split(".")
            last_addr = to_ip(".".join(octets[: 4 - len(last.split("."))] + last.split(".")))
        else:
            try:
                last_val = int(last, 16)
            except ValueError:
                raise ValueProblem(f"invalid address range '{addr_text}'") from None
            last_addr = ipaddress.IPv6Address((int(entry.address) & ~0xFFFF) | last_val)
        if int(last_addr) <= int(entry.address):
            raise ValueProblem(f"Address range end is not greater than address range start - {addr_text} - skipping")
        entry.last_address = last_addr
    else:
        entry.address = to_ip(addr_text)
    if len(w) > 1:
        entry.port = to_port(w[1])
    if len(w) > 2:
        raise ValueProblem(f"unexpected '{w[2]}'")
    return entry


def _vsg_line(ctx: ParseContext, group: VirtualServerGroup, seg: Segment) -> None:
    group.entries.append(parse_vsg_entry(seg))


VS_GROUP.fallback = _vsg_line
VS_GROUP.fallback_summary = "IP [PORT], IP-RANGE [PORT], IP/LEN [PORT] or fwmark N: one member per line"


# --------------------------------------------------------------------------- virtual_server
def _open_vs(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> VirtualServer | None:
    w = seg.words
    if len(w) < 2:
        ctx.error(seg, "virtual_server needs an address, 'fwmark N' or 'group NAME'")
        return None
    try:
        if w[1] == "fwmark":
            if len(w) < 3:
                raise ValueProblem("'fwmark' needs a value")
            vs = VirtualServer("fwmark", location=seg.location, fwmark=to_int(w[2], 0, 2**32 - 1))
        elif w[1] == "group":
            if len(w) < 3:
                raise ValueProblem("'group' needs a name")
            vs = VirtualServer("group", location=seg.location, group=w[2])
        else:
            vs = VirtualServer("address", location=seg.location, address=to_ip(w[1]))
            if len(w) > 2:
                vs.port = to_port(w[2])
        # keepalived 2.2.7 reads two words after virtual_server and ignores the rest
    except ValueProblem as problem:
        ctx.error(seg, f"virtual_server: {problem} - skipping this virtual server")
        return None
    config.virtual_servers.append(vs)
    return vs


def _lb_algo(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if word == "twos":
        vs.lvs_sched = "twos"
        return
    vs.lvs_sched = to_choice(word, SCHEDULERS, "scheduler")


ALWAYS_FLAGS = ("ops", "flag-1", "flag-2", "flag-3")


def _sched_flag(name: str) -> LineHandler:
    """keepalived 2.2.7 takes ops and flag-N anywhere; the others only once lb_algo is sh or mh.

    A flag named for the other of the two (mh-port with sh, `hashed` with
    either) is dropped without a word; with any other scheduler, or before
    lb_algo, keepalived reports it ("only applies to sh scheduler").
    """

    def handler(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
        if name not in ALWAYS_FLAGS:
            if vs.lvs_sched != "sh" and vs.lvs_sched != "mh":
                raise ValueProblem(f"{name} only applies to sh scheduler - ignoring")
            if not name.startswith(f"{vs.lvs_sched}-"):
                return
        if name not in vs.sched_flags:
            vs.sched_flags.append(name)

    return handler


def _lvs_method(ctx: ParseContext, obj: Any, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    obj.lvs_method = _method_word(word)
    rest = list(seg.words[2:])
    if rest:
        if obj.lvs_method != "TUN":
            raise ValueProblem(f"unexpected '{rest[0]}' after {obj.lvs_method}")
        obj.tunnel = _tunnel_options(rest)


def _method_word(word: str) -> LbKind:
    """NAT, DR or TUN, spelt in capitals: keepalived 2.2.7 compares the word exactly."""
    method = LVS_METHODS.get(word.lower())
    if method is None or method != word:
        raise ValueProblem(f"unknown [{word}] routing method (expected NAT, DR or TUN)")
    return method


def _tunnel_options(rest: list[str]) -> dict[str, Any]:
    """`type ipip|gue|gre`, `port N` (gue only, and needed there), `nocsum|csum|remcsum` (not for ipip)."""
    tunnel: dict[str, Any] = {}
    while rest:
        opt = rest.pop(0)
        if opt == "type":
            if not rest:
                raise ValueProblem("missing tunnel type")
            tunnel["type"] = to_choice(rest.pop(0), {"ipip": "ipip", "gue": "gue", "gre": "gre"}, "tunnel type")
        elif opt == "port" and rest:
            tunnel["port"] = to_int(rest.pop(0), 1, 65535)
        elif opt in ("nocsum", "csum", "remcsum"):
            tunnel["checksum"] = opt
        else:
            raise ValueProblem(f"invalid tunnel option '{opt}'")
    kind = tunnel.get("type", "ipip")
    if (kind == "gue") != ("port" in tunnel):
        raise ValueProblem("gue tunnels require port, otherwise cannot have port")
    if kind == "ipip" and "checksum" in tunnel:
        raise ValueProblem("ipip tunnels do not support checksum option")
    if kind == "gre" and tunnel.get("checksum") == "remcsum":
        raise ValueProblem("gre tunnels do not support remote checksum option")
    return tunnel


def _persistence_timeout(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    vs.persistence_timeout_s = to_int(seg.words[1], 1, 2**32 - 1) if len(seg.words) > 1 else 360


def _persistence_granularity(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    """keepalived 2.2.7: a prefix length 1-128 for IPv6 services, else any IPv4 address as the mask.

    The family is the service's, else a word with a dot means IPv4. The IPv4
    mask need not be contiguous (keepalived and ipvsadm both take
    255.0.255.0); it is kept in dotted form, so "24" on an IPv4 service is the
    address 0.0.0.24, as inet_aton reads it for keepalived. Without a
    persistence_timeout the service becomes persistent (360 s).
    """
    word = ctx.arg(seg)
    if word is None:
        return
    family: Family = _family_so_far(vs) or (4 if "." in word else 6)
    if family == 6:
        vs.persistence_granularity = str(to_int(word, 1, 128))
    else:
        vs.persistence_granularity = _inet_aton(word)
    if vs.ip_family is None and vs.kind == "fwmark":
        vs.ip_family = family
    if not vs.persistence_timeout_s:
        vs.persistence_timeout_s = 360


def _inet_aton(word: str) -> str:
    """An IPv4 address as inet_aton reads it (a, a.b, a.b.c or a.b.c.d; decimal, 0x hex or 0 octal parts)."""
    parts = word.split(".")
    try:
        if len(parts) > 4 or not all(parts):
            raise ValueError(word)
        numbers = [int(p, 16) if p.lower().startswith("0x") else int(p, 8) if p.startswith("0") and len(p) > 1
                   else int(p, 10) for p in parts]
    except ValueError:
        raise ValueProblem(f"Invalid IPv4 persistence_granularity specified - {word}") from None
    *head, last = numbers
    if any(n > 255 or n < 0 for n in head) or last < 0 or last >= 1 << (8 * (5 - len(numbers))):
        raise ValueProblem(f"Invalid IPv4 persistence_granularity specified - {word}")
    value = 0
    for n in head:
        value = (value << 8) | n
    value = (value << (8 * (5 - len(numbers)))) | last
    return str(ipaddress.IPv4Address(value))


def _family_so_far(vs: VirtualServer) -> Family | None:
    """The family keepalived has given the service by this line: its address, ip_family, its servers so far.

    Real and sorry servers behind a tunnel do not count (IPVS tunnels between families).
    """
    if vs.address is not None:
        return 4 if vs.address.version == 4 else 6
    if vs.ip_family is not None:
        return vs.ip_family
    for rs in vs.real_servers:
        if (rs.lvs_method or vs.lvs_method) != "TUN":
            return 4 if rs.address.version == 4 else 6
    return None


def _sorry_server(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    sorry = SorryServer(to_ip(word), location=seg.location)
    if len(seg.words) > 2:
        sorry.port = to_port(seg.words[2])
    vs.sorry_server = sorry


def _ip_family(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    family = FAMILY_WORDS.get(word) if word in ("inet", "inet6") else None
    if family is None:
        raise ValueProblem(f"unknown address family {word}")
    known = _family_so_far(vs)
    if known is not None and known != family:
        raise ValueProblem(f"Virtual server specified family {word} conflicts with server family")
    vs.ip_family = family


def _sorry_lvs_method(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    if vs.sorry_server is None:
        raise ValueProblem("sorry_server forwarding used without sorry_server")
    word = ctx.arg(seg)
    if word is not None:
        vs.sorry_server_lvs_method = _method_word(word)
        if len(seg.words) > 2 and vs.sorry_server_lvs_method == "TUN":
            _tunnel_options(list(seg.words[2:]))


def _sorry_inhibit(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> None:
    if vs.sorry_server is None:
        raise ValueProblem("Ignoring sorry_server inhibit used before or without sorry_server")
    vs.sorry_server_inhibit = True


def _close_rs(ctx: ParseContext, rs: RealServer) -> None:
    """keepalived drops, at its closing line, a real server of another family than the service (but for TUN)."""
    if not ctx.config.virtual_servers:
        return
    vs = ctx.config.virtual_servers[-1]
    # by identity, from the end (it was appended last): `in` compares whole models, quadratic in the servers
    position = next((i for i in range(len(vs.real_servers) - 1, -1, -1) if vs.real_servers[i] is rs), None)
    if position is None or (rs.lvs_method or vs.lvs_method) == "TUN":
        return
    family = _family_so_far(vs)
    if family is not None and family != rs.address.version:
        ctx.error(ctx.close_location or rs.location, f"Address family of virtual server and real server {rs.address}"
                  " don't match - skipping real server.", "real_server")
        del vs.real_servers[position]


def _close_vs(ctx: ParseContext, vs: VirtualServer) -> None:
    """keepalived drops, at the closing line, a sorry server of another family than the service (but for TUN)."""
    sorry = vs.sorry_server
    if sorry is None or (vs.sorry_server_lvs_method or vs.lvs_method) == "TUN":
        return
    family = _family_so_far(vs)
    if family is not None and family != sorry.address.version:
        ctx.error(ctx.close_location or vs.location, f"Address family of virtual server and sorry server "
                  f"{sorry.address} don't match - skipping sorry server.", "sorry_server")
        vs.sorry_server = None


def _open_rs(ctx: ParseContext, vs: VirtualServer, seg: Segment) -> RealServer | None:
    w = seg.words
    try:
        if len(w) < 2:
            raise ValueProblem("needs an address")
        address = ctx.addresses.get(w[1])
        if address is None:
            address = ctx.addresses[w[1]] = to_ip(w[1])
        rs = RealServer(address, location=seg.location)
        if len(w) > 2:
            rs.port = to_port(w[2])
        if len(w) > 3:
            raise ValueProblem(f"unexpected '{w[3]}'")
    except ValueProblem as problem:
        ctx.error(seg, f"real_server: {problem} - skipping this real server")
        return None
    vs.real_servers.append(rs)
    return rs


_v = VIRTUAL_SERVER
_v.line("ip_family", _ip_family, "inet or inet6 (for fwmark/group services)")
_v.line("delay_loop", h.timer("delay_loop_s", 0.000001, 2147), "seconds between checks")
_v.line("retry", h.integer("retry", 0, 2**31 - 1), "default retries for checkers")
_v.line("delay_before_retry", h.timer("delay_before_retry_s", 0, 2147), "default pause between retries (s)")
_v.line("warmup", h.timer("warmup_s", 0, 2147), "spread of the first checks (s)")
_v.line("connect_timeout", h.timer("connect_timeout_s", 0.000001, 2147), "default connect timeout (s)")
_v.line("inhibit_on_failure", h.flag("inhibit_on_failure"), "weight 0 instead of removal")
_v.line("lb_algo", _lb_algo, "scheduler (old name of lvs_sched)")
_v.line("lvs_sched", _lb_algo, "scheduler: rr, wrr, lc, wlc, ...")
for _flag in SCHED_FLAGS:
    _v.line(_flag, _sched_flag(_flag), f"scheduler flag {_flag}")
_v.line("lb_kind", _lvs_method, "forwarding method (old name of lvs_method)")
_v.line("lvs_method", _lvs_method, "forwarding method: NAT, DR or TUN")
_v.line("persistence_engine", h.text("persistence_engine"), "persistence engine (sip)")
_v.line("persistence_timeout", _persistence_timeout, "persistence timeout (s, default 360)")
_v.line("persistence_granularity", _persistence_granularity, "persistence netmask")
_v.line("protocol", h.one_of("protocol", PROTOCOLS, "protocol"), "TCP, UDP or SCTP")
# docs/dataplane.md "Stateless NAT and DR for hash schedulers"
_v.line("pykeepalived_stateless", h.flag("pykeepalived_stateless"),
        "pykeepalived only: on/off; a hash-scheduled (sh, mh, dh) NAT or DR service keeps no per-flow state on "
        "the nftables data plane (no conntrack, no flow sets): faster, but a pool change moves the flows "
        "Maglev moves", since="pykeepalived")
_v.line("ha_suspend", h.flag("ha_suspend"), "suspend checks while the VIP is absent")
_v.line("smtp_alert", h.flag("smtp_alert"), "mail on changes")
_v.line("virtualhost", h.text("virtualhost"), "default Host: for HTTP checks")
_v.line("snmp_name", h.text("snmp_name"), "SNMP name", status=Status.NOT_YET)
_v.line("alpha", h.flag("alpha"), "servers start down until checked")
_v.line("omega", h.flag("omega"), "run down scripts at stop")
_v.line("quorum_up", h.script("quorum_up"), "script when quorum is gained")
_v.line("quorum_down", h.script("quorum_down"), "script when quorum is lost")
_v.line("quorum", h.integer("quorum", 1, 2**31 - 1), "weight needed to be up")
_v.line("hysteresis", h.integer("hysteresis", 0, 2**31 - 1), "quorum hysteresis")
_v.line("weight", h.integer("weight", 1, 2**31 - 1), "default real server weight")
_v.line("sorry_server", _sorry_server, "server used when all are down")
_v.line("sorry_server_inhibit", _sorry_inhibit, "sorry server kept with weight 0")
_v.line("sorry_server_lvs_method", _sorry_lvs_method, "forwarding method of the sorry server")
_v.nested("real_server", REAL_SERVER, _open_rs, "a real server", on_close=_close_rs)

_r = REAL_SERVER
_r.line("weight", h.integer("weight", 0, 2**31 - 1), "scheduler weight")
_r.line("lvs_method", _lvs_method, "forwarding method of this server")
_r.line("uthreshold", h.integer("uthreshold", 0, 2**31 - 1), "upper connection threshold")
_r.line("lthreshold", h.integer("lthreshold", 0, 2**31 - 1), "lower connection threshold")
_r.line("inhibit_on_failure", h.flag("inhibit_on_failure"), "weight 0 instead of removal")
_r.line("notify_up", h.script("notify_up"), "script when the server comes up")
_r.line("notify_down", h.script("notify_down"), "script when the server goes down")
_r.line("alpha", h.flag("alpha"), "start down until checked")
_r.line("retry", h.integer("retry", 0, 2**31 - 1), "default retries for checkers")
_r.line("delay_before_retry", h.timer("delay_before_retry_s", 0, 2147), "pause between retries (s)")
_r.line("warmup", h.timer("warmup_s", 0, 2147), "spread of the first check (s)")
_r.line("connect_timeout", h.timer("connect_timeout_s", 0.000001, 2147), "connect timeout (s)")
_r.line("delay_loop", h.timer("delay_loop_s", 0.000001, 2147), "seconds between checks")
_r.line("smtp_alert", h.flag("smtp_alert"), "mail on changes")
_r.line("virtualhost", h.text("virtualhost"), "Host: for HTTP checks")
_r.line("snmp_name", h.text("snmp_name"), "SNMP name", status=Status.NOT_YET)


# --------------------------------------------------------------------------- checkers
def _opener(cls: type[CheckerBase], kind: CheckerKind) -> Any:
    def handler(ctx: ParseContext, rs: RealServer, seg: Segment) -> CheckerBase:
        checker = cls(kind=kind, location=seg.location)
        rs.checkers.append(checker)
        return checker

    return handler


def _current_rs(ctx: ParseContext) -> RealServer | None:
    """The real server whose block is being read: the last of the last virtual server."""
    servers = ctx.config.virtual_servers
    return servers[-1].real_servers[-1] if servers and servers[-1].real_servers else None


def _connect_ip(ctx: ParseContext, check: CheckerBase, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    address = to_ip(word)
    if check.bindto is not None and check.bindto.version != address.version:
        raise ValueProblem(f"connect_ip address {word} does not match address family of bindto - skipping")
    check.connect_ip = address


def _bindto(ctx: ParseContext, check: CheckerBase, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    address = to_ip(word)
    rs = _current_rs(ctx)
    target = check.connect_ip or (rs.address if rs is not None else None)
    if target is not None and target.version != address.version:
        raise ValueProblem(f"bindto address {word} does not match address family of connect_ip - skipping")
    check.bindto = address


def _bind_if(ctx: ParseContext, check: CheckerBase, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if len(word) >= 16:  # IFNAMSIZ
        raise ValueProblem(f"Interface name {word} is too long - ignoring")
    check.bind_if = word


def _to_port1(word: str) -> int:
    return to_int(word, 1, 65535)


def _common(block: Block, connection: bool = True, timing: bool = True) -> None:
    if connection:
        block.line("connect_ip", _connect_ip, "address to check")
        block.line("connect_port", h.value("connect_port", _to_port1), "port to check")
        block.line("bindto", _bindto, "source address")
        block.line("bind_port", h.value("bind_port", _to_port1), "source port")
        block.line("bind_if", _bind_if, "source interface")
        block.line("connect_timeout", h.timer("connect_timeout_s", 0.000001, 2147), "connect timeout (s)")
        block.line("fwmark", h.integer("fwmark", 0, 2**32 - 1), "SO_MARK of the check's socket")
    if timing:
        block.line("retry", h.integer("retry", 0, 2**31 - 1), "failures before down")
        block.line("delay_before_retry", h.timer("delay_before_retry_s", 0, 2147), "pause between retries (s)")
        block.line("warmup", h.timer("warmup_s", 0, 2147), "spread of the first check (s)")
        block.line("delay_loop", h.timer("delay_loop_s", 0.000001, 2147), "seconds between checks")
        block.line("alpha", h.flag("alpha"), "start down until checked")
        block.line("log_all_failures", h.flag("log_all_failures"), "log every failure")


_common(TCP_CHECK)
_common(PING_CHECK)


def _open_url(ctx: ParseContext, check: HttpCheck, seg: Segment) -> UrlSpec:
    url = UrlSpec(location=seg.location)
    check.urls.append(url)
    return url


def _url_close(ctx: ParseContext, url: UrlSpec) -> None:
    if url.path is None:
        ctx.error(ctx.close_location or url.location, "HTTP/SSL_GET checker url has no path - ignoring", "url")


def _close_checker(ctx: ParseContext, check: CheckerBase) -> None:
    """What keepalived checks at a checker's closing line; a checker it skips is dropped from its real server."""
    where = ctx.close_location or check.location
    problem: str | None = None
    if isinstance(check, HttpCheck):
        check.urls = [u for u in check.urls if u.path is not None]
        if not check.urls:
            problem = "HTTP/SSL_GET checker has no urls specified - ignoring"
    elif isinstance(check, FileCheck) and check.track_file is None:
        problem = "FILE_CHECK has no track_file specified - ignoring"
    elif isinstance(check, MiscCheck) and check.misc_path is None:
        problem = "No script path has been specified for MISC_CHECKER - skipping"
    elif isinstance(check, BfdCheck) and check.name is None:
        problem = "No name has been specified for BFD_CHECKER - skipping"
    elif isinstance(check, UdpCheck) and check.min_reply_length > check.max_reply_length:
        ctx.error(where, f"UDP_CHECK min_reply length {check.min_reply_length} > max_reply_length "
                  f"{check.max_reply_length} - will always fail", check.kind)
    rs = _current_rs(ctx)
    if problem is None and not isinstance(check, (MiscCheck, FileCheck, BfdCheck)):
        target = check.connect_ip or (rs.address if rs is not None else None)
        if target is not None and target.version == 6 and target.is_link_local and not check.bind_if:
            problem = f"Checker link local address {target} requires a bind_if"
    if problem is not None:
        ctx.error(where, problem, check.kind)
        if rs is not None and check in rs.checkers:
            rs.checkers.remove(check)


def _digest(ctx: ParseContext, url: UrlSpec, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if len(word) != 32 or any(c not in "0123456789abcdefABCDEF" for c in word):
        raise ValueProblem(f"'{word}' is not an MD5 digest (32 hex digits)")
    url.digest = word.lower()


def _status_code(ctx: ParseContext, url: UrlSpec, seg: Segment) -> None:
    for word in seg.words[1:]:
        if "-" in word:
            lo_text, hi_text = word.split("-", 1)
            lo, hi = to_int(lo_text, 100, 599), to_int(hi_text, 100, 599)
            if hi < lo:
                raise ValueProblem(f"status range '{word}' ends before it starts")
        else:
            lo = hi = to_int(word, 100, 599)
        url.status_code.append((lo, hi))


def _http_protocol(ctx: ParseContext, check: HttpCheck, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        check.http_protocol = to_choice(word, {"1.0": "1.0", "1.0c": "1.0C", "1.1": "1.1"}, "HTTP protocol")


_u = URL_BLOCK
_u.line("path", h.text("path"), "path to GET")
_u.line("digest", _digest, "MD5 of the body (genhash)")
_u.line("status_code", _status_code, "accepted status codes and ranges")
_u.line("virtualhost", h.text("virtualhost"), "Host: header")
_u.line("regex", h.text("regex"), "regular expression the body must match")
_u.line("regex_no_match", h.flag("regex_no_match"), "the body must not match")
_u.line("regex_options", h.words("regex_options"), "PCRE2 options")
_u.line("regex_min_offset", h.integer("regex_min_offset", 0, 2**31 - 1), "first byte searched")
_u.line("regex_max_offset", h.integer("regex_max_offset", 0, 2**31 - 1), "last byte searched")
_u.line("regex_stack", h.integer("regex_stack", 0, 2**31 - 1), "PCRE2 stack size")

_common(HTTP_CHECK)
def _nb_get_retry(ctx: ParseContext, check: HttpCheck, seg: Segment) -> None:
    """keepalived 2.2.7 still reads nb_get_retry, but reports it as a configuration error (its -t fails)."""
    word = ctx.arg(seg)
    if word is None:
        return
    check.retry = to_int(word, 0, 2**31 - 1)
    ctx.error(seg, "nb_get_retry is deprecated - please use 'retry'")


HTTP_CHECK.line("nb_get_retry", _nb_get_retry, "old name of retry (an error in keepalived 2.2.7)", deprecated="retry")
HTTP_CHECK.line("virtualhost", h.text("virtualhost"), "Host: header")
HTTP_CHECK.line("http_protocol", _http_protocol, "1.0, 1.0C or 1.1")
HTTP_CHECK.line("enable_sni", h.flag("enable_sni"), "send SNI")
HTTP_CHECK.line("fast_recovery", h.flag("fast_recovery"), "check URLs back to back after recovery")
HTTP_CHECK.line("sni_name", h.text("sni_name"), "SNI name other than the virtualhost", since="2.4")
HTTP_CHECK.line("tls_compliant", h.flag("tls_compliant"), "send TLS close_notify", since="2.4")
HTTP_CHECK.nested("url", URL_BLOCK, _open_url, "a URL to check", on_close=_url_close)

_common(SMTP_CHECK)
SMTP_CHECK.line("helo_name", h.text("helo_name"), "HELO name")
_common(SMTP_HOST, timing=False)


def _open_smtp_host(ctx: ParseContext, check: SmtpCheck, seg: Segment) -> CheckerBase:
    host = CheckerBase(kind="SMTP_CHECK host", location=seg.location)
    check.hosts.append(host)
    return host


SMTP_CHECK.nested("host", SMTP_HOST, _open_smtp_host, "another host to check", deprecated="one SMTP_CHECK per host")

_common(DNS_CHECK)
DNS_CHECK.line("type", h.one_of("query_type", DNS_TYPES, "DNS query type"), "query type (default SOA)")
DNS_CHECK.line("name", h.text("name"), "name queried (default .)")

_common(MISC_CHECK, connection=False)


def _misc_user(ctx: ParseContext, check: MiscCheck, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        check.user = word
        check.group = seg.words[2] if len(seg.words) > 2 else None
        if check.misc_path is not None:  # keepalived reports a user it cannot find at this line
            check.misc_path.location = seg.location


MISC_CHECK.line("misc_path", h.script("misc_path"), "the command to run")
MISC_CHECK.line("misc_timeout", h.timer("misc_timeout_s", 0.000001, 2147), "seconds before it is killed")
MISC_CHECK.line("misc_dynamic", h.flag("misc_dynamic"), "exit code sets the weight")
MISC_CHECK.line("user", _misc_user, "user [group] to run as")


def _file_weight(ctx: ParseContext, check: FileCheck, seg: Segment) -> None:
    weight, reverse = h.weight_words(ctx, seg, 0, -2147483647, 2147483647)
    check.weight, check.weight_reverse = weight, reverse


def _file_track(ctx: ParseContext, check: FileCheck, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if word not in ctx.config.track_files:  # keepalived looks it up here: it must be defined above
        raise ValueProblem(f"track_file {word} not found")
    check.track_file = word


FILE_CHECK.line("track_file", _file_track, "the track_file followed")
FILE_CHECK.line("weight", _file_weight, "multiplier [reverse]")

_common(UDP_CHECK)


def _require_reply(ctx: ParseContext, check: UdpCheck, seg: Segment) -> None:
    check.require_reply = True
    if len(seg.words) > 1:
        check.reply_pattern = " ".join(seg.words[1:])  # keepalived joins the words, as for payload


def read_hex(text: str) -> bytes:
    """keepalived's hex strings: pairs of digits, a lone digit where a space or the end follows, no 0x."""
    out = bytearray()
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            break
        digits = text[i]
        i += 1
        if i < len(text) and text[i] != " ":
            digits += text[i]
            i += 1
        if any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValueProblem(f"Invalid hex string '{text}'")
        out.append(int(digits, 16))
    if not out:
        raise ValueProblem(f"Invalid hex string '{text}'")
    return bytes(out)


def _payload(ctx: ParseContext, check: UdpCheck, seg: Segment) -> None:
    if len(seg.words) < 2:
        ctx.error(seg, "UDP_CHECK payload requires a payload")
        return
    try:
        check.payload = read_hex(" ".join(seg.words[1:]))
    except ValueProblem as exc:
        ctx.error(seg, f"{exc} for UDP_CHECK payload")


UDP_CHECK.line("payload", _payload, "bytes to send (hex)")
UDP_CHECK.line("require_reply", _require_reply, "a reply is needed [matching HEX]")
UDP_CHECK.line("min_reply_length", h.integer("min_reply_length", 0, 65535), "shortest reply")
UDP_CHECK.line("max_reply_length", h.integer("max_reply_length", 0, 65535), "longest reply")

def _bfd_name(ctx: ParseContext, check: BfdCheck, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if word not in ctx.config.bfd_instances:
        raise ValueProblem(f"BFD_CHECK - BFD {word} not configured")
    check.name = word


BFD_CHECK.line("name", _bfd_name, "the bfd_instance followed")
BFD_CHECK.line("alpha", h.flag("alpha"), "start down until the session is up")

_CHECKERS: list[tuple[CheckerKind, Block, type[CheckerBase]]] = [
    ("TCP_CHECK", TCP_CHECK, TcpCheck),
    ("HTTP_GET", HTTP_CHECK, HttpCheck),
    ("SSL_GET", HTTP_CHECK, HttpCheck),
    ("SMTP_CHECK", SMTP_CHECK, SmtpCheck),
    ("DNS_CHECK", DNS_CHECK, DnsCheck),
    ("MISC_CHECK", MISC_CHECK, MiscCheck),
    ("FILE_CHECK", FILE_CHECK, FileCheck),
    ("PING_CHECK", PING_CHECK, PingCheck),
    ("UDP_CHECK", UDP_CHECK, UdpCheck),
    ("BFD_CHECK", BFD_CHECK, BfdCheck),
]
for _kw, _blk, _cls in _CHECKERS:
    REAL_SERVER.nested(_kw, _blk, _opener(_cls, _kw), f"{_kw} health checker", on_close=_close_checker)


def register(root: Block) -> None:
    """Add SSL, virtual_server_group and virtual_server to `root`."""
    root.nested("SSL", SSL_BLOCK, _open_ssl, "client TLS context for SSL_GET")
    root.nested("virtual_server_group", VS_GROUP, _open_vsg, "addresses sharing one service definition",
                on_close=_close_vsg)
    root.nested("virtual_server", VIRTUAL_SERVER, _open_vs, "an LVS virtual service", on_close=_close_vs)

