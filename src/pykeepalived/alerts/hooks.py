"""The alert mails of each service, one call per event, so that the shells carry one line per hook.

`VrrpMail` serves the VRRP process (instance and sync-group states),
`CheckMail` the checker process (a checker's verdict, a virtual server's
quorum). Both do nothing at all when the config sends no mail.
"""

from __future__ import annotations

from ..config.model import KeepalivedConfig, RealServer, VirtualServer
from .message import (
    VrrpMailGate,
    checker_body,
    checker_mail_due,
    quorum_alert,
    real_server_alert,
    real_server_alerts_on,
    virtual_server_alerts_on,
)
from .smtp import MailSender


class VrrpMail:
    def __init__(self, config: KeepalivedConfig) -> None:
        self.sender = MailSender.for_config(config.global_defs)
        settings = self.sender.settings
        self.gate = None if settings is None else VrrpMailGate(settings, config.global_defs, config.vrrp_instances,
                                                               config.sync_groups)

    def instance(self, name: str, state: str) -> None:
        if self.gate is not None:
            self.sender.send(self.gate.instance(name, state))

    def group(self, name: str, state: str) -> None:
        if self.gate is not None:
            self.sender.send(self.gate.group(name, state))

    async def close(self) -> None:
        await self.sender.close()


class CheckMail:
    def __init__(self, config: KeepalivedConfig) -> None:
        self.g = config.global_defs
        self.sender = MailSender.for_config(config.global_defs)

    def checker(self, vs_name: str, rs_name: str, rs: RealServer, kind: str, up: bool, reason: str | None, *,
                rs_was_alive: bool, rs_alive: bool) -> None:
        """A checker of real server `rs_name` changed its verdict (keepalived: a mail per checker change)."""
        settings = self.sender.settings
        if settings is None:
            return
        body = checker_body(kind, up, reason)
        if body is not None and checker_mail_due(real_server_alerts_on(rs, self.g), settings, rs_was_alive,
                                                 rs_alive):
            self.sender.send(real_server_alert(settings, rs_name, vs_name, rs_alive, body))

    def quorum(self, vs_name: str, vs: VirtualServer, up: bool, *, at_start: bool, quorum: int, hysteresis: int,
               threshold: int, weight_sum: int) -> None:
        settings = self.sender.settings
        if settings is not None and virtual_server_alerts_on(vs, self.g):
            self.sender.send(quorum_alert(settings, vs_name, up, at_start=at_start, quorum=quorum,
                                          hysteresis=hysteresis, threshold=threshold, weight_sum=weight_sum))

    async def close(self) -> None:
        await self.sender.close()
