"""Where `pykeepalived -t` deliberately gives a different verdict than keepalived 2.2.7.

Each entry is a key that corpus configs name in a `# differs: KEY` first line
(tests/compat/corpus), and the reason shown in docs/configuration.md. The
corpus test checks both ways: a config marked `differs` must really get the
other verdict, and every key here must be used by at least one config, so that
the list stays exactly the set of differences a test shows.
"""

from __future__ import annotations

DIFFERENCES: dict[str, str] = {
    "no_dbus": "enable_dbus is refused: pykeepalived has no D-Bus interface, and accepting the keyword would "
               "leave D-Bus clients without the service keepalived offers",
}
"""key -> why pykeepalived's verdict differs from keepalived 2.2.7's."""
