"""Where `pykeepalived -t` deliberately gives a different verdict than keepalived 2.2.7.

Each entry is a key that corpus configs name in a `# differs: KEY` first line
(tests/compat/corpus), and the reason shown in docs/configuration.md. The
corpus test checks both ways: a config marked `differs` must really get the
other verdict, and every key here must be used by at least one config, so that
the list stays exactly the set of differences a test shows.
"""

from __future__ import annotations

DIFFERENCES: dict[str, str] = {
    "net_namespace_missing_t": (
        "`net_namespace` (or `-s`) naming a namespace that does not exist: keepalived 2.2.7 -t stops when it "
        "cannot enter it and exits 0 without checking anything else; pykeepalived -t says so in a warning and "
        "still reports the errors that do not depend on the host (the daemon, like keepalived's, exits there)"),
    # --- virtual servers and checkers (lvs/, checkers/)
    "fwmark-zero": "`virtual_server fwmark 0` is refused: keepalived 2.2.7 reads mark 0 as no mark and builds an "
                   "address service from uninitialised memory when the service also has a protocol and persistence; "
                   "a mark-0 rule would catch all unmarked traffic",
    "newer-checker-keywords": "HTTP_GET/SSL_GET `sni_name` and `tls_compliant` (keepalived 2.4) are accepted and "
                              "acted on; keepalived 2.2.7 reports them as unknown keywords",
    "no_dbus": "enable_dbus is refused: pykeepalived has no D-Bus interface, and accepting the keyword would "
               "leave D-Bus clients without the service keepalived offers",
    "nftables_ipvs": "global_defs nftables_ipvs is refused: pykeepalived's data planes never mark "
                     "virtual_server_group traffic with fwmarks (IPVS: one service per group address, as keepalived "
                     "without the keyword; nftables: sets in its own table), so nothing would act on it",
    # keywords (VRRP, global_defs and the lexer's side)
    "newer-keyword": "pykeepalived also takes keywords that keepalived added after 2.2.7 (json_version, "
                     "owner_ignore_adverts, auth_hmac, ...); keepalived 2.2.7 calls them unknown",
    "include-loop": "an include loop is an error for pykeepalived; keepalived 2.2.7 opens the file again and again "
                    "until it runs out of file descriptors, then skips it and carries on",
    "keepalived-crash": "keepalived 2.2.7 aborts (a double free) on a parameter whose value starts with @ID; "
                        "pykeepalived applies the conditional line",
    "t-stops-at-non-root-script": "keepalived 2.2.7's -t ends itself (SIGTERM, exit 143, nothing said) when it "
                                  "vets the first script that runs as a non-root user, before its completion "
                                  "checks; pykeepalived checks the whole configuration, so it still reports what "
                                  "keepalived's daemon reports, such as SECURITY VIOLATION for scripts run without "
                                  "enable_script_security whatever their user",
    "ipvlan-existing-name": "`use_ipvlan NAME` naming an interface that exists: keepalived 2.2.7 -t reports an "
                            "error unless it is an l2 ipvlan; pykeepalived -t only knows that an interface exists, "
                            "not its kind, so it accepts the line; at run time both daemons leave the name and make "
                            "the ipvlan under the default name",
}
"""key -> why pykeepalived's verdict differs from keepalived 2.2.7's."""
