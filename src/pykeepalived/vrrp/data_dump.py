"""SIGUSR1's keepalived.data for the VRRP process, in keepalived 2.2.7's layout.

keepalived declares the format unstable, yet exporters parse it:
mehdy/keepalived-exporter reads each ` VRRP Instance = NAME` block (`State`,
`Wantstate`, `Interface`, `Virtual Router ID`, `Gratuitous ARP delay`, the
`Virtual IP (N):` list, whose lines it splits on spaces for address and
device) and each ` VRRP Script = NAME` block (`Status`, `State`). Those lines
follow keepalived's labels, indents and value forms exactly
(vrrp/vrrp_data.c dump_vrrp, dump_vscript, dump_sync_group; global_data.c
dump_global_data), and so do the others we write. Sections and lines that
describe keepalived's own internals (the socket pool's buffers, the kernel
interface table with its saved sysctls, the long tail of global_defs tunables
we do not act on) are left out: docs/dumps.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Interface

from ..config.model import IpAddressSpec
from .dump_view import DumpView, GlobalView, GroupView, InstanceView, NotifyLine, ScriptView, SocketView, \
    TrackFileView, TrackLine, state_word

_ADDRESS_FLAG_WORDS = (("home", " home"), ("-nodad", " -nodad"), ("nodad", " -nodad"),
                       ("mngtmpaddr", " mngtmpaddr"), ("noprefixroute", " noprefixroute"),
                       ("autojoin", " autojoin"))
_SCOPE_WORDS = {"universe": "global", "0": "global", "200": "site", "253": "link", "254": "host", "255": "nowhere"}


def format_address(spec: IpAddressSpec, default_dev: str | None, vipset: bool) -> str:
    """One VIP as keepalived's format_ipaddress writes it: `192.0.2.1/24 dev eth0 scope global set`.

    The prefix length is left out for a host address (/32, /128); `set` ends
    the line while the address is on the interface (a master's).
    """
    addr = spec.address
    full = addr.max_prefixlen == addr.network.prefixlen
    text = str(addr.ip) if full else f"{addr.ip}/{addr.network.prefixlen}"
    if spec.broadcast and spec.broadcast not in ("-",) and not isinstance(addr, IPv6Interface):
        brd = str(addr.network.broadcast_address) if spec.broadcast == "+" else spec.broadcast
        text += f" brd {brd}"
    text += f" dev {spec.device or default_dev or '(null)'}"
    if spec.use_vmac:
        text += " use_vmac"
    text += f" scope {_SCOPE_WORDS.get(spec.scope or 'global', spec.scope or 'global')}"
    if spec.label:
        text += f" label {spec.label}"
    if spec.peer is not None:
        text += f" peer {spec.peer.ip}/{addr.network.prefixlen}"
    for flag, words in _ADDRESS_FLAG_WORDS:
        if flag in spec.flags:
            text += words
    if spec.no_track:
        text += " no_track"
    if spec.track_group:
        text += f" track_group {spec.track_group}"
    if isinstance(addr, IPv6Interface):
        lft = spec.preferred_lft
        text += " preferred_lft forever" if lft in (None, "forever") else \
            (" deprecated" if lft == "0" else f" preferred_lft {lft}")
    if vipset:
        text += " set"
    return text


Ctime = Callable[[int], str]
"""C's ctime for a wall-clock second, without the newline ("Wed Dec  2 21:07:01 2026"): the shell's time.ctime."""


def format_data(view: DumpView, ctime: Ctime) -> str:
    """The whole file (keepalived's dump_data_vrrp order: globals, topology, sync groups, scripts, files).

    `ctime` is handed in since the local time zone is the host's, not this pure module's.
    """
    out: list[str] = []
    if view.global_defs is not None:
        out.append("------< Global definitions >------")
        out += _global_lines(view.global_defs)
    if view.instances:
        out.append("------< VRRP Topology >------")
        for inst in view.instances:
            out += _instance_lines(inst, ctime)
    if view.sockets:
        out.append("------< VRRP Sockpool >------")
        for sock in view.sockets:
            out += _socket_lines(sock)
    if view.groups:
        out.append("------< VRRP Sync groups >------")
        for group in view.groups:
            out += _group_lines(group)
    if view.scripts:
        out.append("------< VRRP Scripts >------")
        for script in view.scripts:
            out += _script_lines(script)
    if view.track_files:
        out.append("------< VRRP Track files >------")
        for tf in view.track_files:
            out += _track_file_lines(tf)
    return "".join(line + "\n" for line in out)


def _onoff(flag: bool, yes: str = "true", no: str = "false") -> str:
    return yes if flag else no


def _global_lines(g: GlobalView) -> list[str]:
    lines = [
        f" Network namespace = {g.network_namespace or '(default)'}",
        f" Router ID = {g.router_id}",
    ]
    if g.default_interface:
        lines.append(f" Default interface = {g.default_interface}")
    lines += [
        f" VRRP notify priority changes = {_onoff(g.notify_priority_changes)}",
        f" VRRP IPv4 mcast group = {g.mcast_group4}",
        f" VRRP IPv6 mcast group = {g.mcast_group6}",
        f" Gratuitous ARP delay = {int(g.garp_delay_s)}",
        f" Gratuitous ARP repeat = {g.garp_rep}",
        f" Gratuitous ARP refresh timer = {int(g.garp_refresh_s)}",
        f" Gratuitous ARP refresh repeat = {g.garp_refresh_rep}",
        # unset, the VRRP process shows the garp_master values it falls back to
        f" Gratuitous ARP lower priority delay = "
        f"{int(g.garp_lower_prio_delay_s if g.garp_lower_prio_delay_s is not None else g.garp_delay_s)}",
        f" Gratuitous ARP lower priority repeat = "
        f"{g.garp_lower_prio_rep if g.garp_lower_prio_rep is not None else g.garp_rep}",
        f" Num adverts before down = {g.down_timer_adverts}",
        f" Gratuitous ARP interval = {g.garp_interval_s:f}",
        f" Gratuitous NA interval = {g.gna_interval_s:f}",
        f" VRRP default protocol version = {g.vrrp_version}",
        f" VRRP strict mode = {_onoff(g.strict)}",
        f" Script security {'enabled' if g.script_security else 'disabled'}",
        f" Default script uid:gid {g.script_uid}:{g.script_gid}",
        f" umask = {g.umask:04o}",
    ]
    return lines


def _wall(t: float, ctime: Ctime) -> str:
    """`SECONDS.MICROS (Wed Dec  2 21:07:01.234797 2026)`, keepalived's ctime_us_r."""
    sec = int(t)
    usec = int(round((t - sec) * 1_000_000))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    stamp, _, year = ctime(sec).rpartition(" ")
    return f"{sec}.{usec:06d} ({stamp}.{usec:06d} {year})"


def _track_lines(title: str, items: tuple[TrackLine, ...], comma: bool = False) -> list[str]:
    """An instance's or group's trackers (keepalived writes files with a comma, scripts and interfaces without)."""
    if not items:
        return []
    sep = "," if comma else ""
    return [f"   {title} :"] + [f"     {t.name}{sep} weight {t.weight}{' reverse' if t.reverse else ''}" for t in items]


def _tracking(users: tuple[TrackLine, ...]) -> list[str]:
    """The instances tracking a script or file (keepalived's dump_tracking_obj_list; nothing when none)."""
    if not users:
        return []
    return ["   Tracking instances :"] + [f"     {t.name}, weight {t.weight}{' reverse' if t.reverse else ''}"
                                         for t in users]


def _notify_lines(scripts: tuple[NotifyLine, ...]) -> list[str]:
    return [f"   {s.kind} state transition script = {s.command}, uid:gid {s.uid}:{s.gid}" for s in scripts]


def _instance_lines(i: InstanceView, ctime: Ctime) -> list[str]:
    lines = [f" VRRP Instance = {i.name}", f"   VRRP Version = {i.version}"]
    if i.sync_group:
        lines.append(f"   Sync group = {i.sync_group}")
    if i.family == 6:
        lines.append("   Using Native IPv6")
    lines.append(f"   State = {state_word(i.state)}")
    if i.state == 1:
        lines.append(f"   Master router = {i.master_router or '0.0.0.0'}")
        lines.append(f"   Master priority = {i.master_priority}")
        if i.version == 3:
            lines.append(f"   Master advert int = {i.master_adver_int_cs / 100:.2f} sec")
    if i.unicast or i.unicast_configured or i.unicast_fault_no_peer:
        lines.append("   Flags:")
        if i.unicast:
            lines.append("     Using unicast")
        elif i.unicast_configured:
            lines.append("     Unicast config option specified but using multicast")
        if i.unicast_fault_no_peer:
            lines.append("     If unicast go to fault state if no peers")
    else:
        lines.append("   Flags: none")
    lines += [
        f"   Wantstate = {state_word(i.wantstate)}",
        "   Number of config faults = 0",
        f"   Number of interface and track script faults = {i.num_faults}",
        f"   Number of track scripts init = {i.num_scripts_init}",
        f"   Last transition = {_wall(i.last_transition, ctime)}",
        "   Read timeout = DISABLED" if i.read_timeout is None else f"   Read timeout = {_wall(i.read_timeout, ctime)}",
        f"   Master down timer = {i.master_down_us} usecs",
        f"   Interface = {i.interface or 'not configured'}",
    ]
    if i.dont_track_primary:
        lines.append("   VRRP interface tracking disabled")
    if i.skip_check_adv_addr:
        lines.append("   Skip checking advert IP addresses")
    if i.strict_mode:
        lines.append("   Enforcing strict VRRP compliance")
    lines.append(f"   Using src_ip = {i.src_ip or '(none)'}{' (from configuration)' if i.src_from_config else ''}")
    if not i.unicast and i.multicast_group:
        lines.append(f"   Multicast address {i.multicast_group}" + (
            ", ifindex 0" if i.family == 6 else ""))
    lines += [
        f"   Gratuitous ARP delay = {int(i.garp_delay_s)}",
        f"   Gratuitous ARP repeat = {i.garp_rep}",
        f"   Gratuitous ARP refresh = {int(i.garp_refresh_s)}",
        f"   Gratuitous ARP refresh repeat = {i.garp_refresh_rep}",
        f"   Gratuitous ARP lower priority delay = {int(i.garp_lower_prio_delay_s)}",
        f"   Gratuitous ARP lower priority repeat = {i.garp_lower_prio_rep}",
        f"   Down timer adverts = {i.down_timer_adverts}",
        f"   Send advert after receive lower priority advert = {_onoff(not i.lower_prio_no_advert)}",
        f"   Send advert after receive higher priority advert = {_onoff(i.higher_prio_send_advert)}",
        f"   Virtual Router ID = {i.vrid}",
        f"   Priority = {i.base_priority}",
        f"   Effective priority = {i.effective_priority}",
        f"   Total priority = {i.effective_priority}",
        f"   Advert interval = {i.advert_int_cs // 100} sec" if i.version == 2
        else f"   Advert interval = {i.advert_int_cs * 10} milli-sec",
    ]
    if i.state == 1 and i.version == 3:
        lines.append(f"   Master advert interval = {i.master_adver_int_cs * 10} milli-sec")
    lines.append(f"   Accept = {_onoff(i.accept, 'enabled', 'disabled')}")
    lines.append(f"   Preempt = {_onoff(not i.nopreempt, 'enabled', 'disabled')}")
    if i.preempt_delay_s:
        lines.append(f"   Preempt delay = {i.preempt_delay_s:g} secs")
    lines.append(f"   Promote_secondaries = {_onoff(i.promote_secondaries, 'enabled', 'disabled')}")
    if i.auth_type:
        lines.append(f"   Authentication type = {'IPSEC_AH' if i.auth_type == 2 else 'SIMPLE_PASSWORD'}")
        if i.auth_type != 2:
            lines.append(f"   Password = {i.auth_data}")
    elif i.version == 2:
        lines.append("   Authentication type = none")
    if i.vips:
        lines.append(f"   Virtual IP ({len(i.vips)}):")
        lines += [f"     {v}" for v in i.vips]
    if i.evips:
        lines.append("   Virtual IP Excluded :")
        lines += [f"     {v}" for v in i.evips]
    if i.unicast:
        if i.unicast_ttl is not None:
            lines.append(f"   Unicast TTL = {i.unicast_ttl}")
        lines.append(f"   Check unicast src : {_onoff(i.check_unicast_src, 'yes', 'no')}")
        lines.append("   Unicast Peer :")
        lines += [f"     {p}" for p in i.unicast_peers]
    lines.append(f"   fd_in {i.fds[0]}, fd_out {i.fds[1]}" if i.fds else "   No sockets allocated")
    if i.vroutes:
        lines.append("   Virtual Routes :")
        lines += [f"     {r}" for r in i.vroutes]
    if i.vrules:
        lines.append("   Virtual Rules :")
        lines += [f"     {r}" for r in i.vrules]
    lines += _track_lines("Tracked interfaces", i.track_interfaces)
    lines += _track_lines("Tracked scripts", i.track_scripts)
    lines += _track_lines("Tracked files", i.track_files, comma=True)
    lines.append(f"   Using smtp notification = {_onoff(i.smtp_alert, 'yes', 'no')}")
    lines.append(f"   Notify deleted = {'Deleted' if i.notify_deleted else 'Fault'}")
    lines += _notify_lines(i.notify_scripts)
    lines.append(f"   Notify priority changes = {_onoff(i.notify_priority_changes)}")
    return lines


def _socket_lines(sock: SocketView) -> list[str]:
    """One socket of the pool: ours sends and receives on one descriptor, so fd_in and fd_out are equal."""
    lines = [
        f" fd_in {sock.fd} fd_out = {sock.fd}",
        f"   Interface = {sock.interface}",
        f"   Family = {'IPv4' if sock.family == 4 else 'IPv6'}",
        "   Protocol = VRRP",
        f"   Type = {'Unicast' if sock.unicast_src else 'Multicast'}",
    ]
    if sock.unicast_src:
        lines.append(f"   Address = {sock.unicast_src}")
    lines += ["   Rx buf size = 0", "   VRRP instances"]
    lines += [f"     {name} vrid {vrid}" for name, vrid in sorted(sock.instances, key=lambda nv: nv[1])]
    return lines


def _group_lines(g: GroupView) -> list[str]:
    lines = [
        f" VRRP Sync Group = {g.name}, {state_word(g.state)}",
        f"   Num member fault {g.num_member_fault}, num member init {g.num_member_init}",
    ]
    if g.members:
        lines.append("   VRRP member instances :")
        lines += [f"     {m}" for m in g.members]
    lines.append(f"   Using smtp notification = {_onoff(g.smtp_alert, 'yes', 'no')}")
    lines += _track_lines("Tracked interfaces", g.track_interfaces)
    lines += _track_lines("Tracked scripts", g.track_scripts)
    lines += _track_lines("Tracked files", g.track_files, comma=True)
    lines += _notify_lines(g.notify_scripts)
    return lines


def _script_lines(s: ScriptView) -> list[str]:
    return [
        f" VRRP Script = {s.name}",
        f"   Command = {s.command}",
        f"   Interval = {int(s.interval_s)} sec",
        f"   Timeout = {int(s.timeout_s)} sec",
        f"   Weight = {s.weight}{' reverse' if s.weight_reverse else ''}",
        f"   Rise = {s.rise}",
        f"   Fall = {s.fall}",
        f"   Result = {s.result}",
        "   Insecure = no",
        f"   Init state = {s.init_state}",
        f"   Status = {'GOOD' if s.good else 'BAD'}",
        f"   Script uid:gid = {s.uid}:{s.gid}",
        "   VRRP instances :",
        *_tracking(s.instances),
        f"   State = {'running' if s.running else 'idle'}",
    ]


def _track_file_lines(tf: TrackFileView) -> list[str]:
    return [
        f" Track file = {tf.name}",
        f"   File = {tf.path}",
        f"   Status = {tf.value}",
        f"   Weight = {tf.weight}{' reverse' if tf.weight_reverse else ''}",
        *_tracking(tf.instances),
    ]
