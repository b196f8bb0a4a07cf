"""VIPs, routes and rules: the configuration model pushed to the kernel over rtnetlink.

`AddressManager` turns `IpAddressSpec`, `RouteSpec` and `RuleSpec` (the
`ip addr/route/rule` lines keepalived reads) into rtnetlink requests through
one pyroute2 `AsyncIPRoute`, and answers the few questions VRRP asks of an
interface (index, primary address, MAC).

Contract, so that the shell can re-apply desired state at any time:
- every write is safe to repeat: adding what is there, or removing what is
  gone (including "its interface is gone"), succeeds silently;
- everything else becomes a `NetError` naming the object and the reason;
- what the kernel would accept but we do not translate yet (multipath
  routes, route metrics such as mtu, rule goto, ...) is refused with a
  `NetError` naming the option, never silently dropped;
- an equal route or rule already in place counts as present whoever made
  it, but removal only touches the ones tagged as ours (below).

keepalived compatibility (observed with keepalived 2.2.7):
- routes and rules are tagged `proto keepalived` (18) unless the line names
  a protocol, and we only ever delete routes/rules carrying that tag, so a
  user's identical hand-made route is left alone;
- a route without `scope` gets scope global, even with only `dev` (unlike
  `ip route add`, which would pick link);
- IPv6 VIPs are added with IFA_F_NODAD so they are usable at once;
- a rule without `preference` is given one by keepalived when it reads the
  configuration (16384 counting down); that belongs to the configuration
  layer, so here a rule without preference gets the kernel's default, and
  `add_rule` first looks for an equal rule because the kernel cannot detect
  such a duplicate itself.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from ..config.model import IpAddressSpec, RouteSpec, RuleSpec
from . import NetError
from .netlink_bufs import RcvBuf, set_rcvbuf

__all__ = ["AddressManager", "NetError"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# linux/if_addr.h
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_HOMEADDRESS = 0x10
IFA_F_TENTATIVE = 0x40
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
# linux/rtnetlink.h, linux/fib_rules.h
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255
RT_TABLE_MAIN = 254
RTPROT_KEEPALIVED = 18
RTNH_F_ONLINK = 0x4
FIB_RULE_INVERT = 0x2
IFNAMSIZ = 16

_ADDRESS_FLAGS = {
    "home": IFA_F_HOMEADDRESS,
    "nodad": IFA_F_NODAD,
    "-nodad": IFA_F_NODAD,
    "mngtmpaddr": IFA_F_MANAGETEMPADDR,
    "noprefixroute": IFA_F_NOPREFIXROUTE,
    "autojoin": IFA_F_MCAUTOJOIN,
}
_IPV4_ADDRESS_FLAGS = IFA_F_NOPREFIXROUTE | IFA_F_MCAUTOJOIN
_SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_TABLES = {"unspec": 0, "default": 253, "main": 254, "local": 255}
_PROTOCOLS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": RTPROT_KEEPALIVED}
_ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
_ROUTE_ATTRIBUTES = {"onlink"}
_RULE_ACTIONS = {"table": 1, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_ROUTE_GONE = (errno.ESRCH, errno.ENOENT, errno.ENODEV)
_IPROUTE2_DIRS = (Path("/etc/iproute2"), Path("/usr/lib/iproute2"), Path("/usr/share/iproute2"))


# --------------------------------------------------------------------------- helpers
def _address_family(family: int) -> int:
    """AF_INET/AF_INET6 from 4, 6 or an AF_* value (callers use both)."""
    if family in (4, socket.AF_INET):
        return socket.AF_INET
    if family in (6, socket.AF_INET6):
        return socket.AF_INET6
    raise NetError(f"unknown address family {family}")


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(exc) or type(exc).__name__


def _net_error(what: str, exc: BaseException) -> NetError:
    return NetError(f"{what}: {_reason(exc)}")


def _code(exc: NetlinkError) -> int:
    code = getattr(exc, "code", 0)
    return code if isinstance(code, int) else 0


def _iproute2_names(filename: str) -> dict[str, int]:
    """name -> number from iproute2's map files (rt_tables, rt_protos, rt_scopes) and their .d/*.conf."""
    names: dict[str, int] = {}
    for folder in _IPROUTE2_DIRS:
        for path in [folder / filename, *sorted((folder / f"{filename}.d").glob("*.conf"))]:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 2:
                    number = _parse_number(words[0])
                    if number is not None:
                        names.setdefault(words[1], number)
    return names


def _parse_number(word: str) -> int | None:
    try:
        if word.lower().startswith("0x"):
            return int(word[2:], 16)
        if word.isdigit():
            return int(word, 10)
    except ValueError:
        pass
    return None


def _named_number(kind: str, filename: str, word: str, builtins: Mapping[str, int], limit: int) -> int:
    """A number given as digits or as a name, the way iproute2 resolves them."""
    value = _parse_number(word)
    if value is None:
        value = builtins.get(word)
    if value is None:
        value = _iproute2_names(filename).get(word)
    if value is None:
        raise NetError(f"unknown {kind} '{word}' (neither a number nor a name in /etc/iproute2/{filename})")
    if not 0 <= value <= limit:
        raise NetError(f"{kind} '{word}' is outside 0..{limit}")
    return value


def _table_id(word: str) -> int:
    return _named_number("routing table", "rt_tables", word, _TABLES, 2**32 - 1)


def _scope_id(word: str) -> int:
    return _named_number("scope", "rt_scopes", word, _SCOPES, 255)


def _protocol_id(word: str) -> int:
    return _named_number("route protocol", "rt_protos", word, _PROTOCOLS, 255)


def _ip(text: object) -> IPAddress | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _attr(msg: Any, name: str) -> Any:
    """One netlink attribute of a pyroute2 message, or None."""
    return msg.get_attr(name)


# --------------------------------------------------------------------------- addresses
def _describe_address(spec: IpAddressSpec) -> str:
    return f"{spec.address}" + (f" peer {spec.peer}" if spec.peer is not None else "")


def _address_request(spec: IpAddressSpec, index: int, *, adding: bool) -> dict[str, Any]:
    """pyroute2 `addr()` keywords for one address line; deletion needs only the key."""
    ip = spec.address.ip
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    args: dict[str, Any] = {"index": index, "family": family}
    if spec.peer is not None:
        if spec.peer.version != ip.version:
            raise NetError(f"address {_describe_address(spec)}: peer is not of the same family")
        # iproute2's meaning: IFA_LOCAL is ours, IFA_ADDRESS is the far end and carries the prefix.
        args.update(local=str(ip), address=str(spec.peer.ip), prefixlen=spec.peer.network.prefixlen)
    else:
        args.update(address=str(ip), prefixlen=spec.address.network.prefixlen)
        if family == socket.AF_INET:
            args["local"] = str(ip)
    if not adding:
        return args

    flags = IFA_F_NODAD if family == socket.AF_INET6 else 0
    for word in spec.flags:
        flags |= _ADDRESS_FLAGS.get(word, 0)
    if family == socket.AF_INET:
        flags &= _IPV4_ADDRESS_FLAGS
    if flags:
        args["flags"] = flags
    if spec.scope is not None:
        try:
            args["scope"] = _scope_id(spec.scope)
        except NetError as exc:
            raise NetError(f"address {_describe_address(spec)}: {exc}") from None
    if spec.broadcast is not None:
        if family != socket.AF_INET:
            raise NetError(f"address {_describe_address(spec)}: broadcast is only for IPv4 addresses")
        args["broadcast"] = _broadcast(spec)
    if spec.label is not None and family == socket.AF_INET:
        # IPv6 has no labels; the kernel would ignore it, so do we.
        if len(spec.label.encode()) >= IFNAMSIZ:
            raise NetError(f"address {_describe_address(spec)}: label '{spec.label}' is longer than 15 characters")
        args["label"] = spec.label
    if spec.preferred_lft is not None and spec.preferred_lft != "forever":
        lifetime = _parse_number(spec.preferred_lft)
        if lifetime is None or lifetime >= 2**32:
            raise NetError(f"address {_describe_address(spec)}: invalid preferred_lft '{spec.preferred_lft}'")
        args["preferred_lft"] = lifetime
    return args


def _broadcast(spec: IpAddressSpec) -> str:
    """`brd +` sets the host bits, `brd -` clears them, anything else is the address itself."""
    net = spec.address.network
    if spec.broadcast == "+":
        return str(net.broadcast_address)
    if spec.broadcast == "-":
        return str(net.network_address)
    value = _ip(spec.broadcast)
    if not isinstance(value, ipaddress.IPv4Address):
        raise NetError(f"address {_describe_address(spec)}: invalid broadcast '{spec.broadcast}'")
    return str(value)


def _local_address(msg: Any) -> IPAddress | None:
    """The address an RTM_NEWADDR is about: IFA_LOCAL when there is one (IPv4, peers), else IFA_ADDRESS."""
    return _ip(_attr(msg, "IFA_LOCAL")) or _ip(_attr(msg, "IFA_ADDRESS"))


def _address_flags(msg: Any) -> int:
    value = _attr(msg, "IFA_FLAGS")
    return int(value) if value is not None else int(msg["flags"])


# --------------------------------------------------------------------------- routes
def _describe_route(spec: RouteSpec) -> str:
    words = [] if spec.route_type == "unicast" else [spec.route_type]
    words.append(spec.destination)
    for key, value in (("via", spec.via), ("dev", spec.device), ("src", spec.source), ("table", spec.table)):
        if value is not None:
            words += [key, str(value)]
    if spec.metric is not None:
        words += ["metric", str(spec.metric)]
    return " ".join(words)


def _route_request(spec: RouteSpec, oif: int | None, *, adding: bool) -> dict[str, Any]:
    """pyroute2 `route()` keywords for one route line, or NetError naming what we cannot express."""
    what = f"route {_describe_route(spec)}"
    unsupported = [k for k in spec.attributes if k not in _ROUTE_ATTRIBUTES]
    if spec.nexthops:
        unsupported.insert(0, "nexthop")
    if spec.route_type not in _ROUTE_TYPES:
        unsupported.insert(0, f"type {spec.route_type}")
    if unsupported:
        raise NetError(f"{what}: not supported: {', '.join(unsupported)}")
    family = _address_family(spec.family)
    version = 4 if family == socket.AF_INET else 6
    try:
        args: dict[str, Any] = {
            "family": family,
            "type": _ROUTE_TYPES[spec.route_type],
            "table": _table_id(spec.table) if spec.table is not None else RT_TABLE_MAIN,
            "proto": _protocol_id(spec.protocol) if spec.protocol is not None else RTPROT_KEEPALIVED,
            # keepalived adds with scope global; on delete NOWHERE is the kernel's "any scope".
            "scope": _scope_id(spec.scope)
            if spec.scope is not None
            else RT_SCOPE_UNIVERSE
            if adding
            else RT_SCOPE_NOWHERE,
        }
    except NetError as exc:
        raise NetError(f"{what}: {exc}") from None
    if spec.destination == "default":
        args["dst_len"] = 0
    else:
        try:
            net = ipaddress.ip_network(spec.destination, strict=False)
        except ValueError:
            raise NetError(f"{what}: invalid destination '{spec.destination}'") from None
        if net.version != version:
            raise NetError(f"{what}: destination is not IPv{version}")
        args["dst"] = f"{net.network_address}/{net.prefixlen}"
    if spec.via is not None:
        if spec.via.version != version:
            raise NetError(f"{what}: not supported: an IPv{spec.via.version} gateway for an IPv{version} route")
        if spec.route_type != "unicast":
            raise NetError(f"{what}: a {spec.route_type} route cannot have a gateway")
        args["gateway"] = str(spec.via)
    if oif is not None:
        args["oif"] = oif
    if spec.source is not None:
        if spec.source.version != version:
            raise NetError(f"{what}: source is not IPv{version}")
        args["prefsrc"] = str(spec.source)
    if spec.metric is not None:
        args["priority"] = spec.metric
    if "onlink" in spec.attributes:
        args["flags"] = RTNH_F_ONLINK
    return args


def _route_matches(msg: Any, args: Mapping[str, Any]) -> bool:
    """Whether a dumped route is the one `args` describes (its key and next hop)."""
    if msg["family"] != args["family"] or msg["dst_len"] != args.get("dst_len", _prefix_len(args.get("dst"))):
        return False
    table = _attr(msg, "RTA_TABLE")
    if (table if table is not None else msg["table"]) != args["table"] or msg["type"] != args["type"]:
        return False
    if "dst" in args and _ip(_attr(msg, "RTA_DST")) != _ip(str(args["dst"]).split("/")[0]):
        return False
    for key, name in (("gateway", "RTA_GATEWAY"), ("prefsrc", "RTA_PREFSRC")):
        if key in args and _ip(_attr(msg, name)) != _ip(args[key]):
            return False
    if "oif" in args and _attr(msg, "RTA_OIF") != args["oif"]:
        return False
    return "priority" not in args or (_attr(msg, "RTA_PRIORITY") or 0) == args["priority"]


def _prefix_len(dst: object) -> int:
    return int(str(dst).split("/")[1]) if isinstance(dst, str) and "/" in dst else 0


# --------------------------------------------------------------------------- rules
def _describe_rule(spec: RuleSpec) -> str:
    words = ["not"] if spec.invert else []
    for key, value in (
        ("from", spec.from_prefix),
        ("to", spec.to_prefix),
        ("fwmark", spec.fwmark),
        ("iif", spec.iif),
        ("oif", spec.oif),
        ("preference", spec.preference),
    ):
        if value is not None:
            words += [key, str(value)]
    words += ["table", spec.table or "main"] if spec.action == "table" else [spec.action]
    return " ".join(words)


def _rule_request(spec: RuleSpec, *, adding: bool) -> dict[str, Any]:
    """pyroute2 `rule()` keywords for one rule line, or NetError naming what we cannot express."""
    what = f"rule {_describe_rule(spec)}"
    unsupported = list(spec.attributes)
    if spec.action not in _RULE_ACTIONS:
        unsupported.insert(0, spec.action)
    if unsupported:
        raise NetError(f"{what}: not supported: {', '.join(unsupported)}")
    family = _address_family(spec.family)
    args: dict[str, Any] = {
        "family": family,
        "action": _RULE_ACTIONS[spec.action],
        "protocol": RTPROT_KEEPALIVED,
        # pyroute2 would otherwise send preference 32000; None leaves FRA_PRIORITY out.
        "priority": spec.preference,
    }
    if spec.action == "table":
        if spec.table is not None:
            try:
                args["table"] = _table_id(spec.table)
            except NetError as exc:
                raise NetError(f"{what}: {exc}") from None
        elif adding:
            args["table"] = RT_TABLE_MAIN  # what `ip rule add` does without a table
    for key, prefix in (("src", spec.from_prefix), ("dst", spec.to_prefix)):
        if prefix is None or prefix == "all":
            continue
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise NetError(f"{what}: invalid prefix '{prefix}'") from None
        if _address_family(net.version) != family:
            raise NetError(f"{what}: prefix {prefix} is not of the rule's family")
        args[key] = str(net.network_address)
        args[f"{key}_len"] = net.prefixlen
    if spec.fwmark is not None:
        mark, _, mask = spec.fwmark.partition("/")
        mark_value = _parse_number(mark)
        mask_value = _parse_number(mask) if mask else 0xFFFFFFFF
        if mark_value is None or mask_value is None or mark_value >= 2**32 or mask_value >= 2**32:
            raise NetError(f"{what}: invalid fwmark '{spec.fwmark}'")
        args["fwmark"] = mark_value
        args["fwmask"] = mask_value
    for key, name in (("iifname", spec.iif), ("oifname", spec.oif)):
        if name is not None:
            if len(name.encode()) >= IFNAMSIZ:
                raise NetError(f"{what}: interface name '{name}' is too long")
            args[key] = name
    if spec.invert:
        args["flags"] = FIB_RULE_INVERT
    return args


def _rule_matches(msg: Any, args: Mapping[str, Any]) -> bool:
    """Whether a dumped rule selects and acts as `args` does (preference only when given)."""
    if msg["family"] != args["family"] or msg["action"] != args["action"]:
        return False
    if bool(msg["flags"] & FIB_RULE_INVERT) != bool(args.get("flags", 0) & FIB_RULE_INVERT):
        return False
    if args["priority"] is not None and (_attr(msg, "FRA_PRIORITY") or 0) != args["priority"]:
        return False
    if args["action"] == _RULE_ACTIONS["table"]:
        table = _attr(msg, "FRA_TABLE")
        if (table if table is not None else msg["table"]) != args.get("table"):
            return False
    for key, name in (("src", "FRA_SRC"), ("dst", "FRA_DST")):
        if msg[f"{key}_len"] != args.get(f"{key}_len", 0):
            return False
        if key in args and _ip(_attr(msg, name)) != _ip(args[key]):
            return False
    if (_attr(msg, "FRA_FWMARK") or 0) != args.get("fwmark", 0):
        return False
    if "fwmark" in args and (_attr(msg, "FRA_FWMASK") or 0) != args["fwmask"]:
        return False
    return all(
        _attr(msg, name) == args.get(key) for key, name in (("iifname", "FRA_IIFNAME"), ("oifname", "FRA_OIFNAME"))
    )


def describe_route(spec: RouteSpec) -> str:
    """A route line as `ip route` would show it, for log lines."""
    return _describe_route(spec)


def describe_rule(spec: RuleSpec) -> str:
    """A rule line as `ip rule` would show it, for log lines."""
    return _describe_rule(spec)


# --------------------------------------------------------------------------- the manager
class AddressManager:
    """Owns one AsyncIPRoute (opened in the current network namespace).

    Open it inside the running event loop (pyroute2 binds the socket to the
    loop it first runs on) and close it on the way out; `async with` does both.
    Methods are coroutines that may run concurrently on the one socket:
    pyroute2 routes each reply to its request by sequence number.
    """

    def __init__(self, rcvbuf: RcvBuf | None = None) -> None:
        self._ipr: Any = None
        self._rcvbuf = rcvbuf  # global_defs vrrp_netlink_cmd_rcv_bufs (netlink_bufs.py)

    async def open(self) -> None:
        if self._ipr is not None:
            return
        ipr = AsyncIPRoute()
        try:
            await ipr.setup_endpoint()
        except OSError as exc:
            ipr.close()
            raise _net_error("cannot open an rtnetlink socket", exc) from exc
        set_rcvbuf(ipr, self._rcvbuf)
        self._ipr = ipr

    async def close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            ipr.close()

    async def __aenter__(self) -> AddressManager:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def _rtnl(self) -> Any:
        if self._ipr is None:
            raise NetError("AddressManager is not open")
        return self._ipr

    # ------------------------------------------------------------------ interfaces
    async def ifindex(self, ifname: str) -> int | None:
        """The interface's index, or None if there is no such interface."""
        if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname:
            return None
        try:  # an ioctl in this namespace: no netlink round trip on the takeover path
            return socket.if_nametoindex(ifname)
        except OSError:
            pass
        try:
            links = await self._rtnl.link("get", ifname=ifname)
        except NetlinkError as exc:
            if _code(exc) in (errno.ENODEV, errno.EINVAL, errno.ERANGE):
                return None
            raise _net_error(f"cannot look up interface {ifname}", exc) from exc
        except OSError as exc:
            raise _net_error(f"cannot look up interface {ifname}", exc) from exc
        for link in links:
            return int(link["index"])
        return None

    async def _require_index(self, ifname: str, what: str) -> int:
        index = await self.ifindex(ifname)
        if index is None:
            raise NetError(f"{what}: no interface '{ifname}'")
        return index

    async def mac_address(self, ifname: str) -> bytes:
        """The interface's link-layer address (6 bytes on Ethernet), for GARP/NA frames."""
        what = f"cannot read the link-layer address of {ifname}"
        index = await self._require_index(ifname, what)
        try:
            links = await self._rtnl.link("get", index=index)
        except (NetlinkError, OSError) as exc:
            raise _net_error(what, exc) from exc
        text = _attr(links[0], "IFLA_ADDRESS") if links else None
        try:
            mac = bytes.fromhex(str(text).replace(":", "")) if text else b""
        except ValueError:
            mac = b""
        if not mac:
            raise NetError(f"{what}: it has none")
        return mac

    async def _addresses(self, index: int, family: int) -> list[Any]:
        try:
            return [msg async for msg in await self._rtnl.addr("dump", family=family) if msg["index"] == index]
        except (NetlinkError, OSError) as exc:
            raise _net_error("cannot list addresses", exc) from exc

    async def has_address(self, ifname: str, address: IPAddress) -> bool:
        """Whether `address` is configured on the interface (False if there is no such interface)."""
        index = await self.ifindex(ifname)
        if index is None:
            return False
        family = _address_family(address.version)
        return any(_local_address(msg) == address for msg in await self._addresses(index, family))

    async def primary_address(self, ifname: str, family: int) -> IPAddress | None:
        """The address VRRP adverts leave from when none is configured.

        IPv4: the first address not flagged secondary, preferring scope global
        (the kernel lists link-scope addresses first) and never scope host.
        IPv6: the link-local address (RFC 5798 requires VRRPv3 IPv6 adverts to
        come from it), preferring one that finished DAD; one that failed DAD
        is never used. None if there is no such address or no such interface.
        """
        af = _address_family(family)
        index = await self.ifindex(ifname)
        if index is None:
            return None
        fallback: IPAddress | None = None
        for msg in await self._addresses(index, af):
            address, flags = _local_address(msg), _address_flags(msg)
            if address is None:
                continue
            if af == socket.AF_INET:
                if flags & IFA_F_SECONDARY or msg["scope"] == RT_SCOPE_HOST:
                    continue
                if msg["scope"] == RT_SCOPE_UNIVERSE:
                    return address
            elif not address.is_link_local or flags & IFA_F_DADFAILED:
                continue
            elif not flags & IFA_F_TENTATIVE:
                return address
            fallback = fallback or address
        return fallback

    async def add_address(self, spec: IpAddressSpec, default_ifname: str) -> None:
        """Add a VIP (`dev` from the spec, else `default_ifname`); present already is fine."""
        ifname = spec.device or default_ifname
        what = f"cannot add address {_describe_address(spec)} to {ifname}"
        index = await self._require_index(ifname, what)
        args = _address_request(spec, index, adding=True)
        try:
            await self._rtnl.addr("add", **args)
        except NetlinkError as exc:
            if _code(exc) != errno.EEXIST:
                raise _net_error(what, exc) from exc
        except OSError as exc:
            raise _net_error(what, exc) from exc

    async def remove_address(self, spec: IpAddressSpec, default_ifname: str) -> bool:
        """Remove a VIP; already gone (or its interface gone) is fine. True if it was there."""
        ifname = spec.device or default_ifname
        index = await self.ifindex(ifname)
        if index is None:
            return False
        args = _address_request(spec, index, adding=False)
        try:
            await self._rtnl.addr("del", **args)
        except NetlinkError as exc:
            if _code(exc) not in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT, errno.ESRCH):
                raise _net_error(f"cannot remove address {_describe_address(spec)} from {ifname}", exc) from exc
            return False
        except OSError as exc:
            raise _net_error(f"cannot remove address {_describe_address(spec)} from {ifname}", exc) from exc
        return True

    # ------------------------------------------------------------------ routes
    async def add_route(self, spec: RouteSpec) -> None:
        """Add a route; the same route already there is fine, a different one to the same place is not."""
        what = f"cannot add route {_describe_route(spec)}"
        oif = await self._require_index(spec.device, what) if spec.device is not None else None
        args = _route_request(spec, oif, adding=True)
        try:
            await self._rtnl.route("add", **args)
        except NetlinkError as exc:
            if _code(exc) != errno.EEXIST:
                raise _net_error(what, exc) from exc
            if not await self._route_present(args):
                raise NetError(f"{what}: a different route to {spec.destination} is in the way") from exc
        except OSError as exc:
            raise _net_error(what, exc) from exc

    async def _route_present(self, args: Mapping[str, Any]) -> bool:
        try:
            return any(
                [_route_matches(msg, args) async for msg in await self._rtnl.route("dump", family=args["family"])]
            )
        except (NetlinkError, OSError) as exc:
            raise _net_error("cannot list routes", exc) from exc

    async def remove_route(self, spec: RouteSpec) -> bool:
        """Remove a route we added (proto keepalived unless the line names another); gone is fine.

        True if it was there.
        """
        oif = None
        if spec.device is not None:
            oif = await self.ifindex(spec.device)
            if oif is None:
                return False  # the kernel dropped it with its interface
        args = _route_request(spec, oif, adding=False)
        try:
            await self._rtnl.route("del", **args)
        except NetlinkError as exc:
            if _code(exc) not in _ROUTE_GONE:
                raise _net_error(f"cannot remove route {_describe_route(spec)}", exc) from exc
            return False
        except OSError as exc:
            raise _net_error(f"cannot remove route {_describe_route(spec)}", exc) from exc
        return True

    # ------------------------------------------------------------------ rules
    async def add_rule(self, spec: RuleSpec) -> None:
        """Add a policy rule unless an equal one (same selector, action, preference if given) exists."""
        what = f"cannot add rule {_describe_rule(spec)}"
        args = _rule_request(spec, adding=True)
        try:
            existing = [msg async for msg in await self._rtnl.rule("dump", family=args["family"])]
            if any(_rule_matches(msg, args) for msg in existing):
                return
            await self._rtnl.rule("add", **args)
        except NetlinkError as exc:
            if _code(exc) != errno.EEXIST:
                raise _net_error(what, exc) from exc
        except OSError as exc:
            raise _net_error(what, exc) from exc

    async def remove_rule(self, spec: RuleSpec) -> bool:
        """Remove a rule we added; gone is fine. Without a preference the first equal rule goes.

        True if it was there.
        """
        args = _rule_request(spec, adding=False)
        try:
            await self._rtnl.rule("del", **args)
        except NetlinkError as exc:
            if _code(exc) not in _ROUTE_GONE:
                raise _net_error(f"cannot remove rule {_describe_rule(spec)}", exc) from exc
            return False
        except OSError as exc:
            raise _net_error(f"cannot remove rule {_describe_rule(spec)}", exc) from exc
        return True
