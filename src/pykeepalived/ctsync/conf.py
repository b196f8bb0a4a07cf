"""conntrackd.conf for one daemon, as text (pure): FTFW over the sync link, only the virtual services' flows.

The tunables follow conntrackd's doc/sync/ftfw sample (buffers, hash sizes,
resend queue, ACK window). What differs from the sample is on purpose:
everything the daemon keeps is under our run directory (no clash with a
system conntrackd or another pykeepalived in another namespace), it logs
to a file of ours and not to syslog or systemd (the parent logs its exits),
and the filter accepts only the flows of the virtual services
(`spec.filter_addresses`) instead of ignoring the router's own addresses.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from .spec import CtSyncSpec

PURGE_TIMEOUT_S = 60  # `-t` on leaving MASTER: stale entries go after this long (the sample's default)
RESEND_QUEUE = 131072
ACK_WINDOW = 300
SOCKET_BUFFER = 1249280
HASH_SIZE = 32768
HASH_LIMIT = 131072
NETLINK_BUFFER = 2097152
NETLINK_BUFFER_MAX = 8388608


def _address_lines(addresses: tuple[str, ...]) -> list[str]:
    return [f"\t\t\tIPv{6 if ':' in a else 4}_address {a}" for a in addresses]


def render(spec: CtSyncSpec, local: IPv4Address) -> str:
    """The whole file; `local` is the sync interface's IPv4 address (conntrackd binds to it)."""
    if spec.peer is not None:
        link = [
            "\tUDP {",
            f"\t\tIPv4_address {local}",
            f"\t\tIPv4_Destination_Address {spec.peer}",
            f"\t\tPort {spec.port}",
            f"\t\tInterface {spec.interface}",
            f"\t\tSndSocketBuffer {SOCKET_BUFFER}",
            f"\t\tRcvSocketBuffer {SOCKET_BUFFER}",
            "\t\tChecksum on",
            "\t}",
        ]
    else:
        link = [
            "\tMulticast {",
            f"\t\tIPv4_address {spec.group}",
            f"\t\tGroup {spec.port}",
            f"\t\tIPv4_interface {local}",
            f"\t\tInterface {spec.interface}",
            f"\t\tSndSocketBuffer {SOCKET_BUFFER}",
            f"\t\tRcvSocketBuffer {SOCKET_BUFFER}",
            "\t\tChecksum on",
            "\t}",
        ]
    protocols = [name for name, on in (("TCP", spec.tcp), ("UDP", spec.udp), ("SCTP", spec.sctp)) if on] or ["TCP"]
    lines = [
        "# Written by pykeepalived for lvs_sync_daemon on the nftables data plane; rewritten at every start.",
        "# docs/conntrack-sync.md says what each part is for.",
        "Sync {",
        "\tMode FTFW {",
        f"\t\tResendQueueSize {RESEND_QUEUE}",
        f"\t\tPurgeTimeout {PURGE_TIMEOUT_S}",
        f"\t\tACKWindowSize {ACK_WINDOW}",
        "\t\tDisableExternalCache off",
        "\t\tStartupResync on",  # a restarted conntrackd asks the peer for everything it missed
        "\t}",
        *link,
        "}",
        "General {",
        "\tSystemd off",
        f"\tHashSize {HASH_SIZE}",
        f"\tHashLimit {HASH_LIMIT}",
        f"\tLogFile {spec.paths.log}",
        "\tSyslog off",
        f"\tLockFile {spec.paths.lock}",
        "\tUNIX {",
        f"\t\tPath {spec.paths.socket}",
        "\t}",
        f"\tNetlinkBufferSize {NETLINK_BUFFER}",
        f"\tNetlinkBufferSizeMaxGrowth {NETLINK_BUFFER_MAX}",
        "\tNetlinkOverrunResync on",
        "\tFilter From Userspace {",
        "\t\tProtocol Accept {",
        *[f"\t\t\t{p}" for p in protocols],
        "\t\t}",
    ]
    if spec.addresses:
        lines += ["\t\tAddress Accept {", *_address_lines(spec.addresses), "\t\t}"]
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"
