"""`pykeepalived -t` ends with keepalived 2.2.7's exit status on the same file: 0, 4, 5 or 6.

keepalived keeps the worst class of configuration error it met and `-t`
returns 0 (none), 4 (only "cannot run": an unreadable file, a non-existent
interface), 5 (any other error) or 6 (SECURITY VIOLATION; also a file an
`includem`-like line requires and cannot find). Both run in one namespace
with eth0 and eth1; keepalived is run on every file here, so the expected
status is always its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.compat.oracle import KEEPALIVED, keepalived_verdict, our_verdict

pytestmark = [
    pytest.mark.keepalived,
    pytest.mark.netns,
    pytest.mark.skipif(not shutil.which(KEEPALIVED), reason="keepalived 2.2.7 is not installed"),
]

VRRP = """vrrp_instance VI_1 {{
    state BACKUP
    interface {interface}
    virtual_router_id 51
    priority {priority}
    virtual_ipaddress {{
        192.0.2.1/24
    }}
    {extra}
}}
"""

FILES = {
    "valid": VRRP.format(interface="eth0", priority=100, extra=""),
    "unknown_keyword": "global_defs {\n    no_such_keyword 1\n}\n" + VRRP.format(interface="eth0", priority=100,
                                                                             extra=""),
    "bad_value": VRRP.format(interface="eth0", priority=100000, extra=""),
    "missing_interface": VRRP.format(interface="nosuch0", priority=100, extra=""),
    "missing_tracked_interface": VRRP.format(interface="eth0", priority=100, extra="track_interface {\n nosuch1\n }"),
    "script_without_security": "vrrp_script chk {\n    script \"/bin/true\"\n}\n"
                               + VRRP.format(interface="eth0", priority=100, extra="track_script {\n chk\n }"),
    "security_and_bad_value": "vrrp_script chk {\n    script \"/bin/true\"\n}\n"
                              + VRRP.format(interface="eth0", priority=100000, extra="track_script {\n chk\n }"),
    "include_missing": "include /nonexistent/pykeepalived-test/*.conf\n"
                       + VRRP.format(interface="eth0", priority=100, extra=""),
    "includem_missing": "includem /nonexistent/pykeepalived-test/x.conf\n"
                        + VRRP.format(interface="eth0", priority=100, extra=""),
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_exit_status_matches_keepalived(router_netns: str, tmp_path: Path, name: str) -> None:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(FILES[name])
    theirs = keepalived_verdict(router_netns, str(conf))
    if theirs.returncode == 143:
        pytest.skip("keepalived ended -t with SIGTERM in this namespace")
    ours = our_verdict(router_netns, str(conf))
    assert ours.returncode == theirs.returncode, f"keepalived said:\n{theirs.output}\nwe said:\n{ours.output}"
    assert ours.accepted == (theirs.returncode == 0)
    assert "Traceback" not in ours.output


def test_exit_status_spread(router_netns: str, tmp_path: Path) -> None:
    """The files above cover every status keepalived's -t has (0, 5, 6), so none is matched by accident."""
    seen = set()
    for name in ("valid", "unknown_keyword", "script_without_security"):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(FILES[name])
        seen.add(keepalived_verdict(router_netns, str(conf)).returncode)
    assert {0, 5, 6} <= seen | {143}


def test_missing_file_is_status_4_not_0(router_netns: str, tmp_path: Path) -> None:
    """A deliberate difference: keepalived 2.2.7 ends -t with 0 for a -f file that does not exist."""
    missing = str(tmp_path / "nonexistent.conf")
    ours = our_verdict(router_netns, missing)
    assert ours.returncode == 4 and not ours.accepted
    assert "cannot read configuration file" in ours.output
