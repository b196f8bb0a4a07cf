"""The pure side of the alert mails: keepalived 2.2.7's smtp_alert fallbacks, its texts and its gate."""

from __future__ import annotations

from ipaddress import ip_address

from pykeepalived.alerts.message import (
    MAX_SUBJECT,
    VrrpMailGate,
    checker_body,
    checker_mail_due,
    mail_settings,
    mail_text,
    quorum_alert,
    real_server_alerts_on,
    virtual_server_alerts_on,
    vrrp_alerts_on,
)
from pykeepalived.config.model import GlobalDefs, RealServer, VirtualServer, VrrpInstance


RS = ip_address("10.0.0.2")


def _vs() -> VirtualServer:
    return VirtualServer(kind="address")


def _globals(**kw: object) -> GlobalDefs:
    g = GlobalDefs(notification_email=["a@x", "b@x"], smtp_server="127.0.0.1")
    for k, v in kw.items():
        setattr(g, k, v)
    return g


def test_no_mail_without_recipients_or_server() -> None:
    assert mail_settings(GlobalDefs(smtp_server="127.0.0.1"), "h", "root") is None
    assert mail_settings(GlobalDefs(notification_email=["a@x"]), "h", "root") is None


def test_defaults_come_from_the_local_name() -> None:
    s = mail_settings(_globals(), "host.example", "root")
    assert s is not None
    assert (s.helo, s.sender, s.router_id, s.port, s.timeout_s) == ("host.example", "root@host.example",
                                                                    "host.example", 25, 30.0)
    s = mail_settings(_globals(router_id="lb", smtp_helo_name="me", notification_email_from="f@x"), "h", "root")
    assert s is not None and (s.helo, s.sender, s.router_id) == ("me", "f@x", "lb")


def test_smtp_alert_fallbacks_as_keepalived() -> None:
    g = _globals()
    assert not vrrp_alerts_on(None, g)
    assert not virtual_server_alerts_on(_vs(), g)
    assert real_server_alerts_on(RealServer(RS), g)  # the one default that is on
    g = _globals(smtp_alert=True, smtp_alert_vrrp=False)
    assert not vrrp_alerts_on(None, g) and vrrp_alerts_on(True, g)
    assert virtual_server_alerts_on(_vs(), g)
    g = _globals(smtp_alert=False, smtp_alert_checker=True)
    assert real_server_alerts_on(RealServer(RS), g) and not real_server_alerts_on(RealServer(RS, smtp_alert=False), g)


def test_gate_mails_each_state_once_and_skips_faults_and_stop() -> None:
    g = _globals(router_id="r", smtp_alert=True, no_email_faults=True)
    s = mail_settings(g, None, None)
    assert s is not None
    gate = VrrpMailGate(s, g, {"VI_1": VrrpInstance(name="VI_1")}, {})
    first = gate.instance("VI_1", "BACKUP")
    assert first is not None and first.subject == "[r] VRRP Instance VI_1 - Entering BACKUP state"
    assert gate.instance("VI_1", "FAULT") is None
    assert gate.instance("VI_1", "BACKUP") is None  # the last mailed state
    assert gate.instance("VI_1", "STOP") is None
    master = gate.instance("VI_1", "MASTER")
    assert master is not None and master.body == "=> VRRP Instance is now owning VRRP VIPs <="


def test_checker_texts_and_rule() -> None:
    assert checker_body("TCP_CHECK", False) == "=> TCP CHECK failed on service <="
    assert checker_body("HTTP_GET", False) == "=> CHECK failed on service : HTTP request failed <="
    assert checker_body("MISC_CHECK", False, "timed out after 5 s") == "=> MISC CHECK timed out on service <="
    assert checker_body("FILE_CHECK", True) is None
    s = mail_settings(_globals(no_checker_emails=True), "h", "root")
    assert s is not None
    assert not checker_mail_due(True, s, True, True)  # the server stays up: no_checker_emails holds it back
    assert checker_mail_due(True, s, True, False)


def test_quorum_and_whole_mail_text() -> None:
    s = mail_settings(_globals(router_id="r" * 300), "h", "root")
    assert s is not None
    alert = quorum_alert(s, "[10.0.0.1]:tcp:80", False, at_start=False, quorum=2, hysteresis=1, threshold=1,
                         weight_sum=0)
    assert alert.body == "=> Lost quorum 2+1=1 <= 0 <="
    assert len(alert.subject) == MAX_SUBJECT
    text = mail_text(s, alert, "Wed, 02 Dec 2026 21:07:31 +0000")
    assert text.startswith("Date: Wed, 02 Dec 2026 21:07:31 +0000\r\nFrom: root@h\r\nSubject: [rrr")
    assert text.endswith("\r\nX-Mailer: Keepalived\r\nTo: a@x, b@x\r\n\r\n=> Lost quorum 2+1=1 <= 0 <=\r\n\r\n")
