"""A Slack DM to whoever sent a fax when it ends: sent (pages, time on the line, remote station)
or failed (the reason, attempts made).

The mail to the sender is the durable notice (faxmail.py writes it in the outcome's
transaction); this message is a courtesy on top, sent after the commit, so a Slack outage only
costs the DM: it is logged, never raised into the fax worker.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.slack.blocks import escape
from c2bot.bot.slack.kit import SlackKit
from c2bot.faxgw.events import FaxOutcome
from c2bot.storage.models import FaxAttempt, FaxJob, FaxState, Person

log = logging.getLogger(__name__)


class SlackFaxNotifier:
    """The Slack side of fax outcomes (a `FaxEvents` listener)."""

    def __init__(self, kit: SlackKit) -> None:
        self.kit = kit

    async def within(self, session: AsyncSession, outcome: FaxOutcome) -> None:
        """Nothing to write with the outcome: the DM waits until it is committed."""

    async def after(self, outcome: FaxOutcome) -> None:
        """DM the sender in the background, so Slack's pace never holds up the fax worker."""
        if outcome.kind in ("sent", "failed") and outcome.job_id is not None:
            self.kit.work.start(self.tell_sender(outcome.job_id), f"fax {outcome.job_id} notice")

    async def tell_sender(self, job_id: int) -> None:
        try:
            notice = await self.notice(job_id)
            if notice is None:
                return
            user, text = notice
            opened = await self.kit.client.conversations_open(users=[user])
            await self.kit.client.chat_postMessage(
                channel=str(opened["channel"]["id"]), text=escape(text)
            )
        except Exception:
            log.exception("could not tell the sender of fax %s on Slack", job_id)

    async def notice(self, job_id: int) -> tuple[str, str] | None:
        """(Slack user, message) for a finished fax whose sender is on Slack, else None."""
        async with self.kit.services.sessions() as session:
            job = await session.get(FaxJob, job_id)
            if job is None:
                return None
            user = await _slack_user(session, job)
            if user is None:
                return None
            last = await session.scalar(
                select(FaxAttempt)
                .where(FaxAttempt.job_id == job.id)
                .order_by(FaxAttempt.id.desc())
                .limit(1)
            )
        return user, fax_notice(job, last)


async def _slack_user(session: AsyncSession, job: FaxJob) -> str | None:
    """The sender's Slack user: the person who sent it, else one linked to the sender address."""
    request = job.request
    if request.person is not None and request.person.slack_user_id:
        return request.person.slack_user_id
    if not request.sender_email:
        return None
    return await session.scalar(
        select(Person.slack_user_id)
        .where(
            Person.email == request.sender_email.lower(),
            Person.slack_user_id.is_not(None),
        )
        .order_by(Person.id)
        .limit(1)
    )


def fax_notice(job: FaxJob, last: FaxAttempt | None) -> str:
    """`Fax #7 to +31... sent (2 pages, 41 s, remote station X).`, or for a failed fax
    `Fax #7 to +31... failed: why (3 attempts).`"""
    if job.state is FaxState.SENT:
        details = [_count(job.pages_sent or 0, "page")]
        seconds = _seconds_on_line(last)
        if seconds is not None:
            details.append(f"{seconds} s")
        if job.remote_station_id:
            details.append(f"remote station {job.remote_station_id}")
        return f"Fax #{job.id} to {job.number} sent ({', '.join(details)})."
    reason = job.result_text or job.hangup_cause or "no reason given"
    return f"Fax #{job.id} to {job.number} failed: {reason} ({_count(job.attempts, 'attempt')})."


def _seconds_on_line(attempt: FaxAttempt | None) -> int | None:
    if attempt is None or attempt.answered_at is None or attempt.ended_at is None:
        return None
    return int((attempt.ended_at - attempt.answered_at).total_seconds())


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"
