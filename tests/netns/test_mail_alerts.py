"""Alert mails (global_defs notification_email / smtp_server / smtp_alert ...) against a recording SMTP server.

The server (tests/scripts/mail_sink.py) listens on the namespace's loopback
and keeps every command and the DATA text. The VRRP mails are compared with
what keepalived 2.2.7 sends for the same config and the same events, byte for
byte but for the Date header; the checker's mails (keepalived's checker needs
IPVS, which this kernel lacks) are checked against the texts of its sources.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import Lan, VrrpSettings, unique_prefix, wait_until
from pykeepalived.lab.checkers import tcp_listener
from pykeepalived.lab.topology import Host

from .daemon_process import DaemonProcess
from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

SINK = Path(__file__).resolve().parents[1] / "scripts" / "mail_sink.py"
PORT = 2525
MAIL_GLOBALS = f"""
notification_email {{
    ops@example.org
    oncall@example.org
}}
smtp_server 127.0.0.1 {PORT}
smtp_connect_timeout 5
"""
DATE = re.compile(r"^Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n", re.M)


class MailSink:
    """mail_sink.py in a host's namespace; `mails()` reads what it recorded so far."""

    def __init__(self, host: Host, out: Path) -> None:
        self.out = out
        self.proc = host.netns.popen([sys.executable, str(SINK), "127.0.0.1", str(PORT), str(out)],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"listening":
            self.close()
            raise AssertionError("mail sink did not start")

    def mails(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def subjects(self) -> list[str]:
        return [_header(m, "Subject") for m in self.mails()]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _header(mail: dict[str, Any], name: str) -> str:
    match = re.search(rf"^{name}: (.*?)\r\n", mail["data"], re.M)
    assert match, mail
    return match.group(1)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "ml")


def _vrrp_mails(lab: Lab, kind: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Run `kind` (py or ka) as the only router: init BACKUP, then MASTER; the mails the sink got."""
    sink = MailSink(lab.r1, tmp_path / f"{kind}.jsonl")
    try:
        settings = [VrrpSettings(vrid=71, priority=150, vips=[ip_interface("192.0.2.171/24")], version=3,
                                 advert_int_s=0.1)]
        peer = lab.peer(kind, lab.r1, settings, extra_global=MAIL_GLOBALS + "smtp_alert\n")
        peer.start()
        wait_until(lambda: len(sink.mails()) >= 2, 10, what=f"two mails from {kind}:\n{peer.log()[-3000:]}")
        peer.stop()
        return sink.mails()
    finally:
        sink.close()


@pytest.mark.keepalived
def test_vrrp_mails_equal_keepalived(lab: Lab, tmp_path: Path) -> None:
    ours = _vrrp_mails(lab, "py", tmp_path)
    theirs = _vrrp_mails(lab, "ka", tmp_path)
    assert [_header(m, "Subject") for m in ours] == [
        "[r1] VRRP Instance VI_1 - Entering BACKUP state", "[r1] VRRP Instance VI_1 - Entering MASTER state"]
    assert ours[0]["commands"][2:] == ["RCPT TO:<ops@example.org>", "RCPT TO:<oncall@example.org>", "DATA"]
    assert "=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n" in ours[1]["data"]
    # HELO name and sender default to the host's name and user@name, as keepalived's
    assert [m["commands"] for m in ours] == [m["commands"] for m in theirs]
    assert [DATE.sub("", m["data"]) for m in ours] == [DATE.sub("", m["data"]) for m in theirs]
    assert all(DATE.search(m["data"]) for m in ours)


@pytest.mark.parametrize("kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_vrrp_mails_follow_instance_switches(lab: Lab, tmp_path: Path, kind: str) -> None:
    """smtp_alert off in an instance beats the global one; no_email_faults; no STOP mail (keepalived's never comes)."""
    sink = MailSink(lab.r1, tmp_path / "mails.jsonl")
    try:
        quiet = VrrpSettings(vrid=72, priority=150, vips=[ip_interface("192.0.2.172/24")], version=3,
                             advert_int_s=0.1, name="VI_1", extra=["smtp_alert false"])
        faulty = VrrpSettings(vrid=73, priority=150, vips=[ip_interface("192.0.2.173/24")], version=3,
                              advert_int_s=0.1, name="VI_2", extra=["track_interface { trk0 }"])
        loud = VrrpSettings(vrid=74, priority=150, vips=[ip_interface("192.0.2.174/24")], version=3,
                            advert_int_s=0.1, name="VI_3")
        lab.r1.netns.ip("link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
        for link in ("trk0", "trk1"):
            lab.r1.netns.ip("link", "set", link, "up")
        extra = (MAIL_GLOBALS + "smtp_alert\nno_email_faults\nnotification_email_from lb@example.org\n"
                 "smtp_helo_name lb.example.org\n")
        peer = lab.peer(kind, lab.r1, [quiet, faulty, loud], extra_global=extra)
        peer.start()
        master = "[r1] VRRP Instance VI_{} - Entering MASTER state"
        wait_until(lambda: {master.format(2), master.format(3)} <= set(sink.subjects()), 10,
                   what=f"the MASTER mails:\n{peer.log()[-3000:]}")
        lab.r1.netns.ip("link", "set", "trk1", "down")  # trk0 loses its carrier: VI_2 enters FAULT
        wait_until(lambda: "(VI_2) Entering FAULT STATE" in peer.log(), 5, what="VI_2 in FAULT")
        time.sleep(1.0)  # a FAULT mail would have come by now
        peer.stop()
        mails = sink.mails()
        assert sorted(sink.subjects()) == [f"[r1] VRRP Instance VI_{n} - Entering {state} state"
                                           for n in (2, 3) for state in ("BACKUP", "MASTER")]
        assert mails[0]["commands"][:2] == ["HELO lb.example.org", "MAIL FROM:<lb@example.org>"]
        assert "\r\nFrom: lb@example.org\r\n" in mails[0]["data"]
        assert "\r\nTo: ops@example.org, oncall@example.org\r\n" in mails[0]["data"]
        assert "X-Mailer: Keepalived" in mails[0]["data"]
    finally:
        sink.close()


CHECK_CONF = """
global_defs {{
    router_id lb1
{mail}
    smtp_alert_checker
}}
virtual_server 192.0.2.200 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 1
    real_server {rs} 8080 {{
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
    real_server {rs} 8081 {{
        smtp_alert off
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""


def test_checker_mails_on_real_server_down_and_up(tmp_path: Path) -> None:
    with Lan(unique_prefix("mlc")) as lan:
        lb = lan.add_host("lb", 1)
        rs = str(lb.ipv4.ip)
        sink = MailSink(lb, tmp_path / "mails.jsonl")
        listener = tcp_listener(lb, rs, 8080)
        other = tcp_listener(lb, rs, 8081)
        conf = tmp_path / "keepalived.conf"
        conf.write_text(CHECK_CONF.format(mail=MAIL_GLOBALS, rs=rs))
        daemon = DaemonProcess(lb.netns.name, ["-n", "-l", "-G", "-C", "--dataplane", "none", "-f", str(conf),
                                               "--status-file", str(tmp_path / "status.json"),
                                               "-p", str(tmp_path / "p.pid"), "-c", str(tmp_path / "c.pid")],
                               tmp_path / "log")
        try:
            daemon.wait_log("Checking 2 real servers", 15)
            listener.kill()
            other.kill()
            down = f"[lb1] Realserver [{rs}]:tcp:8080 of virtual server [192.0.2.200]:tcp:80 - DOWN"
            wait_until(lambda: down in sink.subjects(), 15, what=f"the DOWN mail:\n{daemon.log()[-3000:]}")
            listener = tcp_listener(lb, rs, 8080)
            up = down.replace("DOWN", "UP")
            wait_until(lambda: up in sink.subjects(), 15, what=f"the UP mail:\n{daemon.log()[-3000:]}")
            quorum = "[lb1] Virtualserver [192.0.2.200]:tcp:80 - "
            wait_until(lambda: quorum + "UP" in sink.subjects(), 5, what="the quorum mail")
            by_subject = {_header(m, "Subject"): m for m in sink.mails()}
            assert by_subject[down]["data"].endswith("\r\n\r\n=> TCP CHECK failed on service <=\r\n\r\n")
            assert by_subject[up]["data"].endswith("\r\n\r\n=> TCP CHECK succeed on service <=\r\n\r\n")
            assert by_subject[quorum + "DOWN"]["data"].endswith("=> Lost quorum 1+0=1 <= 0 <=\r\n\r\n")
            assert by_subject[quorum + "UP"]["data"].endswith("=> Gained quorum 1+0=1 <= 1 <=\r\n\r\n")
            assert not [s for s in sink.subjects() if ":8081 " in s]  # its own smtp_alert off
        finally:
            daemon.stop()
            listener.kill()
            other.kill()
            sink.close()


def test_vrrp_mails_accepted_by_opensmtpd(lab: Lab, tmp_path: Path) -> None:
    """The state-change alerts reach a real MTA: OpenSMTPD accepts both mails (its log says result=Ok)."""
    from pykeepalived.lab.servers import opensmtpd

    smtpd = opensmtpd(lab.r1, tmp_path / "smtpd", address="127.0.0.1", port=PORT,
                      mailboxes=["ops@example.org", "oncall@example.org"])
    smtpd.start()
    peer = None
    try:
        settings = [VrrpSettings(vrid=75, priority=150, vips=[ip_interface("192.0.2.175/24")], version=3,
                                 advert_int_s=0.1)]
        peer = lab.peer("py", lab.r1, settings, extra_global=MAIL_GLOBALS + "smtp_alert\n")
        peer.start()
        wait_until(lambda: "(VI_1) Entering MASTER STATE" in peer.log(), 10, what="MASTER")
        # one message per state change, each for both recipients, delivered by the MTA
        wait_until(lambda: smtpd.output().count("stat=Delivered") >= 4, 10,
                   what=f"four deliveries in\n{smtpd.output()[-3000:]}\n{peer.log()[-2000:]}")
        delivered = [line for line in smtpd.output().splitlines() if "stat=Delivered" in line]
        assert sorted(re.search(r" to=<([^>]+)>", line).group(1) for line in delivered) == [  # type: ignore[union-attr]
            "oncall@example.org", "oncall@example.org", "ops@example.org", "ops@example.org"]
        mbox = (tmp_path / "smtpd" / "mail" / "root").read_text()
        assert sorted(re.findall(r"^Subject: (.*)$", mbox, re.M)) == [
            f"[r1] VRRP Instance VI_1 - Entering {state} state" for state in ("BACKUP", "BACKUP", "MASTER", "MASTER")]
    finally:
        if peer is not None:
            peer.stop()
        smtpd.kill()
