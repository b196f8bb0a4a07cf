"""Delivering alert mails: keepalived's SMTP dialogue over Python's smtplib, one worker thread per mail.

Why smtplib in a thread rather than aiosmtplib: it is the standard library
(no new run-time dependency for a feature most configs leave off), it parses
multi-line replies and applies the timeout to the connect and to every read
(keepalived's `smtp_connect_timeout` does both), and alerts are rare, so a
thread each costs nothing that matters while the event loop never waits on
a mail server. The commands go through `docmd` so that the wire is
keepalived's own, verbs in capitals: HELO, MAIL FROM:<...>, one RCPT TO:<...>
per recipient, DATA, the text, QUIT; any reply but the expected one ends the
dialogue with QUIT, as keepalived does. Failures are logged in keepalived's
words and never raised: a mail server that is down costs a log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import re
import socket

from ..config.model import GlobalDefs
from .message import Alert, MailSettings, mail_settings, mail_text

log = logging.getLogger("pykeepalived.alerts")
UNKNOWN_NAME = "[unknown]"


def local_name() -> str:
    """The host's canonical name, as keepalived's get_local_name: uname's nodename through getaddrinfo."""
    try:
        infos = socket.getaddrinfo(os.uname().nodename, None, flags=socket.AI_CANONNAME)
    except OSError:
        return UNKNOWN_NAME
    return next((info[3] for info in infos if info[3]), UNKNOWN_NAME)


def _user() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def needs_local_name(g: GlobalDefs) -> bool:
    """keepalived looks the name up only when router_id, or with a mail server the HELO name or sender, is unset."""
    return not g.router_id or (bool(g.smtp_server) and (not g.smtp_helo_name or not g.notification_email_from))


def _host(settings: MailSettings) -> str:
    """keepalived's spelling of the server in its log lines: [ADDRESS]:PORT."""
    return f"[{settings.server}]:{settings.port}"


class _Refused(Exception):
    def __init__(self, command: str, code: int) -> None:
        super().__init__(command, code)
        self.command, self.code = command, code


def deliver(settings: MailSettings, text: str) -> bool:
    """One mail, blocking (run it in a thread); True when the server took it."""
    import smtplib  # with email, 2 MiB in every process: loaded by the first mail, not by every daemon

    host = _host(settings)
    conn = smtplib.SMTP(local_hostname=settings.helo, timeout=settings.timeout_s)
    try:
        try:
            code, _ = conn.connect(settings.server, settings.port)
        except (OSError, smtplib.SMTPException) as exc:
            timed_out = isinstance(exc, (TimeoutError, socket.timeout))
            log.info("Timeout connecting SMTP server %s." if timed_out else "SMTP connection ERROR to %s.", host)
            return False
        log.debug("Remote SMTP server %s connected.", host)  # keepalived logs these two with -D
        try:
            _expect(code, 220, "(E)SMTP")
            _expect(conn.docmd("HELO", settings.helo)[0], 250, "HELO")
            _expect(conn.docmd("MAIL", f"FROM:<{settings.sender}>")[0], 250, "MAIL")
            for rcpt in settings.recipients:
                _expect(conn.docmd("RCPT", f"TO:<{rcpt}>")[0], 250, "RCPT")
            _expect(conn.docmd("DATA")[0], 354, "DATA")
            stuffed = re.sub(r"(?m)^\.", "..", text)  # a line starting with a dot must not end the mail
            conn.send(stuffed.encode("utf-8") + b".\r\n")
            _expect(conn.getreply()[0], 250, "BODY")
        except _Refused as exc:
            log.info("Error processing %s cmd on SMTP server %s. SMTP status code = %d", exc.command, host, exc.code)
            return False
        log.debug("SMTP alert successfully sent.")
        return True
    except (OSError, smtplib.SMTPException):
        log.info("Timeout reading data to remote SMTP server %s.", host)
        return False
    finally:
        try:
            conn.docmd("QUIT")
        except (OSError, smtplib.SMTPException):
            pass
        conn.close()


def _expect(code: int, wanted: int, command: str) -> None:
    if code != wanted:
        raise _Refused(command, code)


class MailSender:
    """Sends alerts in the background of the running event loop; `close` waits a little for those in flight."""

    def __init__(self, settings: MailSettings | None) -> None:
        self.settings = settings
        self._pending: set[asyncio.Task[bool]] = set()

    @classmethod
    def for_config(cls, g: GlobalDefs) -> MailSender:
        name = local_name() if g.notification_email and g.smtp_server and needs_local_name(g) else None
        return cls(mail_settings(g, name, _user()))

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    def send(self, alert: Alert | None) -> None:
        if self.settings is None or alert is None:
            return
        import email.utils  # see deliver
        import datetime  # only a mail needs it: 0.4 MiB a checker without alerts does not load

        date = email.utils.format_datetime(datetime.datetime.now().astimezone())
        text = mail_text(self.settings, alert, date)
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(deliver, self.settings, text))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Give mails in flight `timeout_s` to finish; the threads of the others end with their own timeout."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)
