"""`-t`'s exit status, as keepalived 2.2.7 chooses it from the configuration errors it reported.

keepalived keeps the worst class of error it met (the highest in its
`config_err_t` order) and `-t` ends with:

- 0: no error;
- 4: only errors that mean it cannot run the file at all: a configuration
  file it cannot read, a fatal item (an interface named for linkbeat or
  up/down delays that does not exist, a static address without an
  interface); a `vrrp_instance` interface that does not exist is a general
  error (5) in 2.2.7, as here;
- 5: any other configuration error (an unknown keyword, a bad value, ...),
  even beside class-4 errors;
- 6: scripts configured without `enable_script_security` (SECURITY
  VIOLATION), the worst class; and, before any of that, a file that an
  `includem`/`includer`/`includew`/`includeb`/`includea` line must find and
  cannot: keepalived then stops with its "no configuration" status, 6 too.

Checked against /usr/sbin/keepalived by tests/compat/test_exit_status.py.
One deliberate difference: keepalived 2.2.7 ends `-t` with 0 when the file
given by `-f` does not exist (it only says "Config files missing"); we return
4, its status for a file it cannot read, so that a script testing a new file
never takes a typo for a valid configuration.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..config.errors import Diagnostic, Severity

EXIT_OK = 0
EXIT_CANNOT_RUN = 4  # KEEPALIVED_CHK_EXIT_CONFIG
EXIT_CONFIG_ERRORS = 5  # KEEPALIVED_CHK_EXIT_CONFIG_TEST
EXIT_SECURITY = 6  # KEEPALIVED_CHK_EXIT_CONFIG_TEST_SECURITY
EXIT_NO_CONFIG = 6  # KEEPALIVED_EXIT_NO_CONFIG: a file an include variant requires is missing

# Messages of errors in keepalived's "cannot run" classes (CONFIG_FILE_NOT_FOUND, CONFIG_BAD_IF, CONFIG_FATAL)
CANNOT_RUN_MESSAGES = (
    "cannot read configuration file ",
    "specified for linkbeat interface",
    "specified for up/down delay",
    "requires either an interface",
)
STRICT_INCLUDES = frozenset({"includem", "includer", "includew", "includeb", "includea"})


def is_security_violation(diag: Diagnostic) -> bool:
    return diag.message.startswith("SECURITY VIOLATION")


def is_cannot_run(diag: Diagnostic) -> bool:
    return any(text in diag.message for text in CANNOT_RUN_MESSAGES)


def config_test_status(diagnostics: Iterable[Diagnostic]) -> int:
    """The status `keepalived -t` ends with for these diagnostics (warnings never count)."""
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if not errors:
        return EXIT_OK
    if any(d.keyword in STRICT_INCLUDES for d in errors):
        return EXIT_NO_CONFIG
    if any(is_security_violation(d) for d in errors):
        return EXIT_SECURITY
    if all(is_cannot_run(d) for d in errors):
        return EXIT_CANNOT_RUN
    return EXIT_CONFIG_ERRORS
