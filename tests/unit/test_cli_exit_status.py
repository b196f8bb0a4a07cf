"""`-t`'s exit status from the diagnostics, keepalived 2.2.7's classes (tests/compat/test_exit_status.py runs both)."""

from __future__ import annotations

from pykeepalived.cmdline.exit_status import config_test_status
from pykeepalived.config.errors import Diagnostic, Location, Severity

HERE = Location("k.conf", 3)


def error(message: str, keyword: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, message, HERE, keyword)


def warning(message: str) -> Diagnostic:
    return Diagnostic(Severity.WARNING, message, HERE)


def test_no_error_is_0_whatever_the_warnings() -> None:
    assert config_test_status([]) == 0
    assert config_test_status([warning("'x' is parsed but not acted on yet")]) == 0


def test_only_cannot_run_errors_are_4() -> None:
    assert config_test_status([error("cannot read configuration file /x.conf: Permission denied")]) == 4
    assert config_test_status([error("unknown interface eth9 specified for linkbeat interface"),
                               error("Static address 192.0.2.1 requires either an interface")]) == 4


def test_any_other_error_is_5() -> None:
    assert config_test_status([error("unknown keyword 'x'")]) == 5
    assert config_test_status([error("cannot read configuration file /x.conf: No such file"),
                               error("priority: number '1000' outside range [1, 255]")]) == 5


def test_security_violation_is_6_even_beside_other_errors() -> None:
    violation = error("SECURITY VIOLATION - scripts are being executed but enable_script_security is not set.")
    assert config_test_status([violation]) == 6
    assert config_test_status([error("unknown keyword 'x'"), violation]) == 6


def test_a_file_an_include_variant_requires_is_6() -> None:
    assert config_test_status([error("no file matches '/x/*.conf'", "includem")]) == 6
    assert config_test_status([error("cannot read /x: a FIFO", "includer")]) == 6
    assert config_test_status([error("include loop: /a is already being read", "include")]) == 5
