"""keepalived 2.2.7's alert mails as data: when one is due, its subject and body, the text after DATA.

Pure: the shells hand in states and names, the adapter (smtp.py) delivers.
The texts are keepalived's (core/smtp.c, vrrp/vrrp_notify.c, the check_*.c
modules and check/ipwrapper.c), so that mail filters and the people reading
them see no difference. Each `smtp_alert` is resolved as keepalived does: the
block's own keyword, else global_defs `smtp_alert_vrrp` / `smtp_alert_checker`,
else `smtp_alert`, else off, except a real server, which defaults to on (kept
so by keepalived for backwards compatibility). Nothing is sent without both
`notification_email` and `smtp_server`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import GlobalDefs, RealServer, SyncGroup, VirtualServer, VrrpInstance

MAX_SUBJECT = 255  # keepalived's MAX_HEADERS_LENGTH - 1: longer subjects are cut
MAX_BODY = 511  # MAX_BODY_LENGTH - 1
DEFAULT_HELO = "localhost"  # what keepalived says without smtp_helo_name and without a local name


@dataclass(frozen=True)
class MailSettings:
    """global_defs' mail keywords, completed with keepalived's defaults."""

    server: str
    port: int
    helo: str
    sender: str
    recipients: tuple[str, ...]
    timeout_s: float
    router_id: str | None
    no_email_faults: bool
    no_checker_emails: bool


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str


def router_id(g: GlobalDefs, local_name: str | None) -> str | None:
    """global_defs router_id, else the host's canonical name (keepalived's get_local_name)."""
    return g.router_id or local_name or None


def mail_settings(g: GlobalDefs, local_name: str | None, user: str | None) -> MailSettings | None:
    """None when keepalived sends nothing (no recipients or no server).

    keepalived's defaults: the HELO name and the sender (USER@NAME) come from
    the local name when the config gives none; the timeout is 30 s.
    """
    if not g.notification_email or not g.smtp_server:
        return None
    name = local_name if local_name and local_name != "[unknown]" else None
    sender = g.notification_email_from or (f"{user}@{name}" if user and name else "")
    return MailSettings(
        server=g.smtp_server, port=g.smtp_server_port, helo=g.smtp_helo_name or name or DEFAULT_HELO,
        sender=sender, recipients=tuple(g.notification_email), timeout_s=g.smtp_connect_timeout_s or 1.0,
        router_id=router_id(g, local_name), no_email_faults=g.no_email_faults,
        no_checker_emails=g.no_checker_emails)


def vrrp_alerts_on(own: bool | None, g: GlobalDefs) -> bool:
    """A vrrp_instance's or vrrp_sync_group's smtp_alert as keepalived resolves it (default off)."""
    for value in (own, g.smtp_alert_vrrp, g.smtp_alert):
        if value is not None:
            return value
    return False


def virtual_server_alerts_on(vs: VirtualServer, g: GlobalDefs) -> bool:
    for value in (vs.smtp_alert, g.smtp_alert_checker, g.smtp_alert):
        if value is not None:
            return value
    return False


def real_server_alerts_on(rs: RealServer, g: GlobalDefs) -> bool:
    """A real server's default is on, unlike every other smtp_alert (keepalived keeps it for old configs)."""
    for value in (rs.smtp_alert, g.smtp_alert_checker, g.smtp_alert):
        if value is not None:
            return value
    return True


def _subject(router: str | None, text: str) -> str:
    return f"[{router if router is not None else '(null)'}] {text}"[:MAX_SUBJECT]


_INSTANCE_TEXTS = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
}
_GROUP_TEXTS = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}


class VrrpMailGate:
    """Which VRRP state changes get a mail: keepalived's last_email_state rule, per instance and per group.

    A mail goes out when the instance's (group's) smtp_alert is on, the state
    differs from the one last mailed about, and it is not FAULT under
    no_email_faults. STOP is never mailed: keepalived queues that mail as it
    exits and it never reaches the server (checked against 2.2.7).
    """

    def __init__(self, settings: MailSettings, g: GlobalDefs, instances: dict[str, VrrpInstance],
                 groups: dict[str, SyncGroup]) -> None:
        self.settings = settings
        self._on = {("INSTANCE", n): vrrp_alerts_on(i.smtp_alert, g) for n, i in instances.items()}
        self._on.update({("GROUP", n): vrrp_alerts_on(s.smtp_alert, g) for n, s in groups.items()})
        self._last: dict[tuple[str, str], str] = {}

    def instance(self, name: str, state: str) -> Alert | None:
        return self._gate("INSTANCE", name, state, "VRRP Instance", _INSTANCE_TEXTS)

    def group(self, name: str, state: str) -> Alert | None:
        return self._gate("GROUP", name, state, "VRRP Group", _GROUP_TEXTS)

    def _gate(self, kind: str, name: str, state: str, label: str,
              texts: dict[str, tuple[str, str]]) -> Alert | None:
        key = (kind, name)
        if not self._on.get(key) or state == "STOP" or state not in texts:
            return None
        if (self.settings.no_email_faults and state == "FAULT") or self._last.get(key) == state:
            return None
        self._last[key] = state
        subject, body = texts[state]
        return Alert(_subject(self.settings.router_id, f"{label} {name} - {subject}"), body[:MAX_BODY])


_CHECK_WORDS = {
    "TCP_CHECK": ("=> TCP CHECK succeed on service <=", "=> TCP CHECK failed on service <="),
    "HTTP_GET": ("=> CHECK succeed on service <=", "=> CHECK failed on service : HTTP request failed <="),
    "SSL_GET": ("=> CHECK succeed on service <=", "=> CHECK failed on service : HTTP request failed <="),
    "SMTP_CHECK": ("=> CHECK succeed on service <=", "=> CHECK failed on service <="),
    "DNS_CHECK": ("=> DNS_CHECK: succeed on service <=", "=> DNS_CHECK: failed on service <="),
    "PING_CHECK": ("=> ICMP CHECK succeed on service <=", "=> ICMP CHECK failed on service <="),
    "UDP_CHECK": ("=> UDP CHECK succeed on service <=", "=> UDP CHECK failed on service <="),
}


def checker_body(kind: str, up: bool, reason: str | None = None) -> str | None:
    """The body keepalived's checker of this kind writes; None for kinds that send no mail (FILE_CHECK)."""
    if kind == "MISC_CHECK":
        word = "succeeded" if up else ("timed out" if reason and "timed out" in reason else "failed")
        return f"=> MISC CHECK {word} on service <="
    texts = _CHECK_WORDS.get(kind)
    return None if texts is None else texts[0 if up else 1]


def checker_mail_due(rs_alerts: bool, settings: MailSettings, rs_was_alive: bool, rs_alive: bool) -> bool:
    """A checker changed its verdict: keepalived mails if the server's state changed or no_checker_emails is off."""
    return rs_alerts and (rs_was_alive != rs_alive or not settings.no_checker_emails)


def real_server_alert(settings: MailSettings, rs: str, vs: str, alive: bool, body: str) -> Alert:
    """SMTP_MSG_RS: a checker of real server `rs` (keepalived's spelling) of virtual server `vs` changed."""
    return Alert(_subject(settings.router_id, f"Realserver {rs} of virtual server {vs} - {'UP' if alive else 'DOWN'}"),
                 body[:MAX_BODY])


def real_server_shutdown_alert(settings: MailSettings, rs: str, vs: str) -> Alert:
    """SMTP_MSG_RS_SHUT: an alive server leaves the table as the checker stops (omega)."""
    return Alert(_subject(settings.router_id, f"Realserver {rs} of virtual server {vs} - DOWN"),
                 "=> Shutting down <=")


def quorum_alert(settings: MailSettings, vs: str, up: bool, *, at_start: bool, quorum: int, hysteresis: int,
                 threshold: int, weight_sum: int, stopping: bool = False) -> Alert:
    """SMTP_MSG_VS: a virtual server gained or lost its quorum (or starts with or without it)."""
    if stopping:
        body = "=> Shutting down <="
    else:
        what = ("Starting with quorum up" if at_start else "Gained quorum") if up else \
            ("Starting with quorum down" if at_start else "Lost quorum")
        body = f"=> {what} {quorum}+{hysteresis}={threshold} <= {weight_sum} <="
    return Alert(_subject(settings.router_id, f"Virtualserver {vs} - {'UP' if up else 'DOWN'}"), body[:MAX_BODY])


def mail_text(settings: MailSettings, alert: Alert, date: str) -> str:
    """What follows DATA, up to (not including) the terminating dot: keepalived's headers, body, blank line.

    `date` is RFC 2822's form of the local time ("Wed, 02 Dec 2026 21:07:31 +0000").
    """
    return (f"Date: {date}\r\nFrom: {settings.sender}\r\nSubject: {alert.subject}\r\nX-Mailer: Keepalived\r\n"
            f"To: {', '.join(settings.recipients)}\r\n\r\n{alert.body}\r\n\r\n")
