"""Which network namespace the daemon runs in, and the names that follow from it (keepalived 2.2.7's rules).

`net_namespace NAME` (top level of keepalived.conf) or `-s NAME` (which wins,
logged as keepalived logs it) makes the daemon run inside /run/netns/NAME:
the top-level process enters it before it reads host facts (interfaces) or
opens any socket, and every child and checker worker it starts inherits it,
so VIPs, adverts, routes and nftables tables all live there and nowhere else.
Like keepalived, the namespace is never created: a missing one is logged
("Failed to open /run/netns/NAME", "Unable to set network namespace NAME -
exiting") and the daemon exits with status 0, as keepalived 2.2.7 does.

The configuration is read before the namespace is known, as keepalived
reads its global keywords first: a config that names a namespace is read a
second time once inside, so that `interface eth1` is checked where the
daemon will run. A config without one is read once.

keepalived also gives itself a private mount namespace with
/run/keepalived/NAME bind-mounted on /run/keepalived; pykeepalived writes the
same files at the paths the host sees instead (config/instance_names.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..host.netns_enter import NetnsError, enter_netns, same_netns

if TYPE_CHECKING:  # -t imports this module: only the daemon needs the names
    from ..config.instance_names import Naming
    from ..config.model import KeepalivedConfig

EXIT_NO_NAMESPACE = 0  # keepalived 2.2.7 exits 0 ("goto end" with exit_code still KEEPALIVED_EXIT_OK)


class NamespaceUnavailable(NetnsError):
    """The daemon's namespace cannot be entered: keepalived's two log lines in one message."""

    def __init__(self, namespace: str, reason: str) -> None:
        super().__init__(f"{reason}; Unable to set network namespace {namespace} - exiting")
        self.namespace = namespace
        self.reason = reason


@dataclass(frozen=True)
class NamespaceChoice:
    namespace: str | None  # where the daemon runs (None: where it was started)
    overridden: str | None = None  # the config's net_namespace that `-s` replaced


def choose_namespace(cli_namespace: str | None, config: KeepalivedConfig) -> NamespaceChoice:
    configured = config.global_defs.net_namespace
    if cli_namespace:
        return NamespaceChoice(cli_namespace, configured if configured and configured != cli_namespace else None)
    return NamespaceChoice(configured)


def naming_of(config: KeepalivedConfig, namespace: str | None) -> Naming:
    from ..config.instance_names import Naming

    g = config.global_defs
    return Naming(namespace=namespace, instance=g.instance, use_pid_dir=g.use_pid_dir)


def enter(namespace: str) -> None:
    """Enter /run/netns/NAMESPACE unless already there; NetnsError with keepalived's words if it cannot."""
    if same_netns(namespace):
        return
    try:
        enter_netns(namespace)
    except NetnsError as exc:
        raise NamespaceUnavailable(namespace, str(exc)) from None


def ipvs_namespace_problem(config: KeepalivedConfig, namespace: str | None) -> str | None:
    """net_namespace_ipvs naming another namespace than the daemon's: not supported, so refused at start.

    keepalived opens its IPVS (and its LVS nftables) netlink sockets there;
    pykeepalived's data planes run in the daemon's own namespace. The same
    namespace (or "" while running in the default one) is what we do anyway.
    """
    wanted = config.global_defs.net_namespace_ipvs
    if wanted is None or wanted == (namespace or ""):
        return None
    if not (config.virtual_servers or config.global_defs.lvs_sync_daemon):
        return None
    where = f"namespace {wanted}" if wanted else "the default namespace"
    return (f"net_namespace_ipvs: the data plane in {where}, apart from the daemon's "
            f"({namespace or 'default'}), is not supported")


def log_choice(choice: NamespaceChoice, naming: Naming, ident: str) -> None:
    """The lines keepalived logs at start about its namespace and name."""
    import logging  # here: -t imports this module and never logs

    log = logging.getLogger("pykeepalived")
    if choice.overridden:
        log.info("Overriding config net_namespace '%s' with command line namespace '%s'",
                 choice.overridden, choice.namespace)
    if naming.namespace or naming.instance:
        log.info("Changing syslog ident to %s", ident)


T = TypeVar("T")


def read_in_namespace(cli_namespace: str | None, read: Callable[[], T],
                      config_of: Callable[[T], KeepalivedConfig],
                      discard: Callable[[T], None] = lambda _: None) -> tuple[T, NamespaceChoice]:
    """Read the configuration from inside the namespace the daemon will run in, entering it on the way.

    `-s` is known before reading: enter, then read. Otherwise read, and if the
    config names a namespace, enter it and read again (host checks such as
    `interface` then look where the daemon runs). Raises NetnsError.
    """
    if cli_namespace:
        enter(cli_namespace)
        got = read()
        return got, choose_namespace(cli_namespace, config_of(got))
    got = read()
    choice = choose_namespace(None, config_of(got))
    if choice.namespace and not same_netns(choice.namespace):
        discard(got)
        enter(choice.namespace)
        got = read()
    return got, choice


def read_for_test(cli_namespace: str | None, read: Callable[[bool], T],
                  config_of: Callable[[T], KeepalivedConfig]) -> tuple[T, str | None]:
    """`-t`: check inside the namespace, as keepalived 2.2.7 does (it enters it for -t too).

    A namespace that cannot be entered: keepalived -t stops there and exits 0
    without checking anything else. We still check what does not depend on
    the host (so errors are reported: a deliberate difference, see
    config/differences.py) and return a warning naming the namespace.
    """
    try:
        got, _ = read_in_namespace(cli_namespace, lambda: read(True), config_of)
        return got, None
    except NamespaceUnavailable as exc:
        return read(False), (f"warning: net_namespace {exc.namespace}: {exc.reason}; the daemon would exit here "
                             "(keepalived 2.2.7 -t stops here too, reporting nothing); interfaces not checked")


def apply_naming(args: Any, config: KeepalivedConfig, namespace: str | None, default_status_file: str) -> Naming:
    """Fill the command line's unset pid files (and our default status file) with keepalived's names.

    `args` is the parsed command line (argparse.Namespace): -p/-r/-c given
    explicitly win, as in keepalived. Its `namespace` becomes the one chosen,
    so that the children's command lines carry it (for their syslog ident).
    """
    from ..config.instance_names import pid_files, status_file

    naming = naming_of(config, namespace)
    names = pid_files(naming)
    args.pid = args.pid or names.main
    args.vrrp_pid = args.vrrp_pid or names.vrrp
    args.checkers_pid = args.checkers_pid or names.checkers
    if args.status_file == default_status_file:
        args.status_file = status_file(naming)
    args.namespace = namespace
    return naming
