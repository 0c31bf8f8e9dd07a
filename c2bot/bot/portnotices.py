"""Port request notices: every committed port event told to the support thread, the customer's
DM and the customer's mailbox.

The domain writes events and nudges `porting.WAKE`; this runs a delivery round soon after (and
each housekeeping minute, for events another process committed, such as the shell's). Mail and
Slack each mark what they delivered, so a round can stop anywhere and the next one goes on.
"""

from __future__ import annotations

import logging

from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.mail.portmail import PortMail
from c2bot.bot.services import Services
from c2bot.bot.slack.kit import InFlight, SlackKit
from c2bot.bot.slack.portthreads import PortThreads
from c2bot.handlers import porting
from c2bot.handlers.context import Context

log = logging.getLogger(__name__)


class PortNotices:
    """Built once per process that serves; answers `ctx.nudge("port")` in this process."""

    def __init__(
        self, services: Services, outbox: Outbox | None = None, slack: SlackKit | None = None
    ) -> None:
        self.services = services
        self.outbox = outbox
        self.mail = PortMail(services)
        self.threads = PortThreads(services, slack.client) if slack is not None else None
        # Slack's work in flight is drained when Slack stops; without Slack, our own.
        self.work = slack.work if slack is not None else InFlight()
        self._busy = False
        self._again = False
        services.wakers[porting.WAKE] = self.wake

    def wake(self) -> None:
        """New events are committed: deliver them soon (one round at a time, then once more)."""
        if self._busy:
            self._again = True
            return
        self._busy = True
        self.work.start(self._rounds(), "port notices")

    async def _rounds(self) -> None:
        try:
            while True:
                self._again = False
                await self.deliver()
                if not self._again:
                    return
        finally:
            self._busy = False

    async def deliver(self) -> int:
        """One round: mail first (durable), then Slack. Returns how many notices went out."""
        mailed = await self.mail.deliver_due()
        if mailed and self.outbox is not None:
            self.outbox.wake()
        shown = await self.threads.deliver_due() if self.threads is not None else 0
        return mailed + shown

    async def housekeeping(self, ctx: Context) -> None:
        """Each minute: reminders that are due, then whatever is not delivered yet."""
        try:
            await porting.due_port_reminders(ctx)
        except Exception:
            log.exception("port reminders failed; trying again next round")
        await self.deliver()

    async def drain(self) -> None:
        await self.work.drain()
