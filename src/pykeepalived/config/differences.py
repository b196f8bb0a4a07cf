"""Where `pykeepalived -t` deliberately gives a different verdict than keepalived 2.2.7.

Each entry is a key that corpus configs name in a `# differs: KEY` first line
(tests/compat/corpus), and the reason shown in docs/configuration.md. The
corpus test checks both ways: a config marked `differs` must really get the
other verdict, and every key here must be used by at least one config, so that
the list stays exactly the set of differences a test shows.
"""

from __future__ import annotations

DIFFERENCES: dict[str, str] = {
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
}
"""key -> why pykeepalived's verdict differs from keepalived 2.2.7's."""
