"""The outbox: mail is committed with its cause, then relayed; failures retry, never vanish.

Rows are claimed one at a time with `FOR UPDATE SKIP LOCKED`, so several processes can share
one outbox on PostgreSQL. A message that keeps failing is marked failed after about a day and
stays in the table for a human.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.services import Services
from c2bot.storage.models import OutboundMail

log = logging.getLogger(__name__)

BACKOFF = (60, 300, 900, 1800, 3600, 3600 * 2, 3600 * 4, 3600 * 8)
IDLE_SECONDS = 30.0
SEND_TIMEOUT = 30.0


def enqueue(
    session: AsyncSession,
    *,
    envelope_from: str,
    message: EmailMessage,
    message_id: str,
    case_id: int | None,
) -> None:
    """Write a message to the outbox inside the caller's transaction."""
    session.add(
        OutboundMail(
            envelope_from=envelope_from,
            recipient=str(message["To"]),
            message_id=message_id,
            raw=message.as_bytes(),
            case_id=case_id,
        )
    )


class Relay:
    """One connection to the relay, opened on first use and kept for a round of messages."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.client: aiosmtplib.SMTP | None = None

    async def send(self, sender: str, recipient: str, raw: bytes) -> None:
        if self.client is None or not self.client.is_connected:
            self.client = aiosmtplib.SMTP(
                hostname=self.host,
                port=self.port,
                timeout=SEND_TIMEOUT,
                start_tls=False,
                use_tls=False,
            )
            await self.client.connect()
        # sendmail, not send(): automatic answers go out with the null sender <>.
        await self.client.sendmail(sender, [recipient], raw)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


class Outbox:
    def __init__(self, services: Services, registry: CollectorRegistry) -> None:
        self.services = services
        self.wakeup = asyncio.Event()
        self.stopping = asyncio.Event()
        self.sent = Counter("c2bot_mail_sent", "Mail relayed", registry=registry)
        self.failures = Counter(
            "c2bot_mail_send_failures", "Relay attempts that failed", registry=registry
        )

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    async def run(self) -> None:
        while not self.stopping.is_set():
            self.wakeup.clear()
            relay = Relay(*self.services.settings.relay)
            try:
                while await self.send_one(relay) and not self.stopping.is_set():
                    pass
            except Exception:
                log.exception("outbox round failed; retrying shortly")
            finally:
                await relay.close()
            if self.stopping.is_set():
                break
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), IDLE_SECONDS)

    async def send_one(self, relay: Relay) -> bool:
        """Relay the next due message; False when nothing is due."""
        now = self.services.clock()
        async with self.services.sessions.begin() as session:
            row = await session.scalar(
                select(OutboundMail)
                .where(
                    OutboundMail.sent_at.is_(None),
                    OutboundMail.failed_at.is_(None),
                    # A message never tried is due at once, whatever clock wrote it.
                    or_(OutboundMail.attempts == 0, OutboundMail.next_attempt_at <= now),
                )
                .order_by(OutboundMail.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return False
            try:
                await relay.send(row.envelope_from, row.recipient, row.raw)
            except aiosmtplib.SMTPResponseException as error:
                if error.code >= 500:  # the relay refuses for good: say so now, not in 16 hours
                    self._give_up(row, f"{error.code} {error.message}")
                else:
                    self._reschedule(row, f"{error.code} {error.message}")
            except Exception as error:  # whatever went wrong, the row stays for a retry
                await relay.close()
                self._reschedule(row, str(error) or type(error).__name__)
            else:
                row.sent_at = self.services.clock()
                self.sent.inc()
        return True

    def _reschedule(self, row: OutboundMail, error: str) -> None:
        self.failures.inc()
        row.attempts += 1
        row.last_error = error[:2000]
        if row.attempts > len(BACKOFF):
            self._give_up(row, error)
            return
        row.next_attempt_at = self.services.clock() + timedelta(seconds=BACKOFF[row.attempts - 1])
        log.warning(
            "relay failed for mail %s (attempt %d): %s", row.message_id, row.attempts, error
        )

    def _give_up(self, row: OutboundMail, error: str) -> None:
        """Stop trying; the row stays, with its error, for a human to see."""
        row.failed_at = self.services.clock()
        row.last_error = error[:2000]
        log.error("giving up on mail %s to %s: %s", row.message_id, row.recipient, error)

    async def health(self) -> dict[str, object]:
        async with self.services.sessions() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboundMail)
                .where(OutboundMail.sent_at.is_(None), OutboundMail.failed_at.is_(None))
            )
            failed = await session.scalar(
                select(func.count())
                .select_from(OutboundMail)
                .where(OutboundMail.failed_at.is_not(None))
            )
        return {"ok": True, "outbox_pending": int(pending or 0), "outbox_failed": int(failed or 0)}
