"""Port requests in Slack: a card in the support channel whose thread staff work it in (with
the buttons for the current operator's answers), a copy in the requester's DM, and a line in each
thread for every step.

Port events are shown after their commit, in order, each once: an event is claimed (a lease that
lapses if this process dies) before it is shown and marked done after. A post that fails leaves
the event for the next round (housekeeping, or the next nudge).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import CursorResult, or_, select, update

from c2bot.bot.services import Services
from c2bot.bot.slack.blocks import Block, cap, chunks, escape, field_sections, mrkdwn, plain
from c2bot.bot.slack.files import share_files
from c2bot.handlers import portcheck, porting, portview
from c2bot.handlers.cases import FileUpload
from c2bot.storage.models import PortDocument, PortEvent, PortRequest, PortState

log = logging.getLogger(__name__)

ACCEPT = "port_accept"
REJECT = "port_reject"
DELAY = "port_delay"
SCHEDULE = "port_schedule"
COMPLETE = "port_complete"
CANCEL = "port_cancel"
UPLOAD = "port_upload"
LETTER = "port_letter"
SHOW_WITHIN = timedelta(days=2)  # older events are history, not news, when Slack comes back
LEASE = timedelta(minutes=2)
BATCH = 50
POST_TEXT_MAX = 3900
CUSTOMER_HINT = "You are told here at every step, and by mail. `/port show {n}` shows it all."
STAFF_BUTTONS: dict[PortState, tuple[tuple[str, str], ...]] = {
    PortState.DRAFT: (("Upload signed letter", UPLOAD), ("Cancel", CANCEL)),
    PortState.SUBMITTED: (
        ("Accept", ACCEPT),
        ("Reject…", REJECT),
        ("Delay…", DELAY),
        ("Cancel", CANCEL),
    ),
    PortState.ACCEPTED: (("Schedule…", SCHEDULE), ("Delay…", DELAY), ("Cancel", CANCEL)),
    PortState.DELAYED: (
        ("Accept", ACCEPT),
        ("Reject…", REJECT),
        ("Schedule…", SCHEDULE),
        ("Delay…", DELAY),
        ("Cancel", CANCEL),
    ),
    PortState.SCHEDULED: (
        ("Complete", COMPLETE),
        ("Reschedule…", SCHEDULE),
        ("Delay…", DELAY),
        ("Cancel", CANCEL),
    ),
}
CUSTOMER_BUTTONS: dict[PortState, tuple[tuple[str, str], ...]] = {
    PortState.DRAFT: (
        ("Upload signed letter", UPLOAD),
        ("Letter (PDF)", LETTER),
        ("Cancel request", CANCEL),
    ),
    PortState.SUBMITTED: (("Cancel request", CANCEL),),
    PortState.ACCEPTED: (("Cancel request", CANCEL),),
    PortState.DELAYED: (("Cancel request", CANCEL),),
}
CONFIRMS = {
    CANCEL: "The port request is cancelled; the customer and support are told.",
    COMPLETE: "The numbers become DIDs of the account; the customer is told.",
}


# --- the card ---------------------------------------------------------------------------------


def card_text(view: portview.PortView) -> str:
    return escape(
        f"Port request #{view.number} ({view.account_number} {view.account_company}, "
        f"{view.state.value}): {view.company}, {view.numbers_label}"
    )


def port_card(view: portview.PortView, staff: bool) -> list[Block]:
    """The card: staff get the buttons for the donor's answers, the customer theirs."""
    blocks: list[Block] = [
        {"type": "header", "text": plain(f"Port request #{view.number}", 150)},
        {
            "type": "section",
            "text": mrkdwn(f"*{escape(view.company)}*: {escape(view.numbers_label)}"),
        },
        *field_sections(view.fields()),
    ]
    if view.warnings:
        warnings = "\n".join(f":warning: {escape(w)}" for w in view.warnings)
        blocks.append({"type": "context", "elements": [mrkdwn(warnings[:2900])]})
    buttons = (STAFF_BUTTONS if staff else CUSTOMER_BUTTONS).get(view.state, ())
    if buttons:
        elements = [button(label, action, view.number) for label, action in buttons]
        blocks.append({"type": "actions", "block_id": "port_actions", "elements": elements})
    if not staff:
        hint = CUSTOMER_HINT.format(n=view.number)
        blocks.append({"type": "context", "elements": [mrkdwn(hint)]})
    return cap(blocks)


def button(label: str, action_id: str, number: int) -> Block:
    rendered: Block = {
        "type": "button",
        "text": plain(label),
        "action_id": action_id,
        "value": str(number),
    }
    if action_id in CONFIRMS:
        rendered["confirm"] = {
            "title": plain(f"{label} port request #{number}?"),
            "text": plain(CONFIRMS[action_id], 300),
            "confirm": plain(label),
            "deny": plain("Back"),
        }
    if action_id == CANCEL:
        rendered["style"] = "danger"
    if action_id in (ACCEPT, COMPLETE):
        rendered["style"] = "primary"
    return rendered


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One event with its request as it is now, and where it lives in Slack."""

    event: PortEvent
    view: portview.PortView
    port: PortRequest
    customer: str | None
    document: PortDocument | None


class PortThreads:
    def __init__(self, services: Services, client: AsyncWebClient) -> None:
        self.services = services
        self.client = client
        self.channel = services.settings.support_channel
        self._round = asyncio.Lock()

    async def deliver_due(self) -> int:
        """Show every event not shown yet, oldest first; stops at the first failure."""
        async with self._round:
            shown = 0
            for event_id in await self._due():
                if not await self._claim(event_id):
                    continue
                try:
                    await self.show(event_id)
                except Exception:
                    log.exception("could not show port event %s in Slack; trying later", event_id)
                    await self._release(event_id)
                    break
                await self._done(event_id)
                shown += 1
            return shown

    async def _due(self) -> list[int]:
        now = self.services.clock()
        async with self.services.sessions() as session:
            rows = await session.scalars(
                select(PortEvent.id)
                .where(
                    PortEvent.slack_done_at.is_(None),
                    PortEvent.at >= now - SHOW_WITHIN,
                    or_(
                        PortEvent.slack_claimed_at.is_(None),
                        PortEvent.slack_claimed_at < now - LEASE,
                    ),
                )
                .order_by(PortEvent.id)
                .limit(BATCH)
            )
            return list(rows)

    async def show(self, event_id: int) -> None:
        shown = await self._load(event_id)
        if shown is None:
            return
        posted = await self._ensure_cards(shown)
        if not posted:
            await self._update_cards(shown.port, shown.view)
        shown = await self._load(event_id) or shown
        await self._in_support(shown)
        await self._in_dm(shown)

    async def _in_support(self, shown: Shown) -> None:
        port = shown.port
        if not (shown.event.notify_staff and port.slack_channel and port.slack_ts):
            return
        text = escape(shown.event.note)
        if shown.event.kind == porting.EventKind.REMINDER:
            text = f":alarm_clock: <!here> {text}"
        else:
            text = f"_{text}_ ({escape(shown.event.actor_label)}, {shown.event.channel.value})"
        await self._post(port.slack_channel, port.slack_ts, text)
        if shown.document is not None:
            upload = FileUpload(
                shown.document.filename, shown.document.content_type, shown.document.data
            )
            await share_files(self.client, port.slack_channel, port.slack_ts, [upload])

    async def _in_dm(self, shown: Shown) -> None:
        port = shown.port
        if not (shown.event.notify_customer and port.dm_channel and port.dm_ts):
            return
        await self._post(port.dm_channel, port.dm_ts, escape(shown.event.note))
        if porting.EventKind(shown.event.kind) in porting.LETTER_EVENTS:
            today = portcheck.local_day(shown.event.at, shown.view.zone)
            country = self.services.settings.port_country
            name, pdf = portview.render_letter(shown.view, today, country)
            upload = FileUpload(name, "application/pdf", pdf)
            comment = (
                "The letter of authorisation: sign it and upload it with the button on the card "
                f"above, or `/port sign {port.id}`."
            )
            await share_files(self.client, port.dm_channel, port.dm_ts, [upload], comment)

    async def _post(self, channel: str, thread_ts: str, text: str) -> None:
        for part in chunks(text, POST_TEXT_MAX):
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=part)

    # -- cards -------------------------------------------------------------------------------

    async def _ensure_cards(self, shown: Shown) -> bool:
        """Post the cards that are missing; whether any was posted (it is current then)."""
        posted = False
        if shown.port.slack_ts is None and self.channel is not None:
            posted = await self._post_card(shown, self.channel, staff=True)
        if shown.customer and shown.port.dm_ts is None:
            opened = await self.client.conversations_open(users=[shown.customer])
            dm = str(opened["channel"]["id"])
            posted = await self._post_card(shown, dm, staff=False) or posted
        return posted

    async def _post_card(self, shown: Shown, channel: str, staff: bool) -> bool:
        view = shown.view
        posted = await self.client.chat_postMessage(
            channel=channel, text=card_text(view), blocks=port_card(view, staff)
        )
        where, ts = str(posted["channel"]), str(posted["ts"])
        if staff:
            claimed = await self._claim_card(view.number, slack_channel=where, slack_ts=ts)
        else:
            claimed = await self._claim_card(view.number, dm_channel=where, dm_ts=ts)
        if not claimed:
            # Another process posted this card meanwhile: keep theirs.
            await self.client.chat_delete(channel=where, ts=ts)
        return claimed

    async def _update_cards(self, port: PortRequest, view: portview.PortView) -> None:
        if port.slack_channel and port.slack_ts:
            await self.client.chat_update(
                channel=port.slack_channel,
                ts=port.slack_ts,
                text=card_text(view),
                blocks=port_card(view, staff=True),
            )
        if port.dm_channel and port.dm_ts:
            await self.client.chat_update(
                channel=port.dm_channel,
                ts=port.dm_ts,
                text=card_text(view),
                blocks=port_card(view, staff=False),
            )

    # -- storage -----------------------------------------------------------------------------

    async def _load(self, event_id: int) -> Shown | None:
        async with self.services.sessions() as session:
            event = await session.get(PortEvent, event_id, populate_existing=True)
            if event is None:
                return None
            port = await session.get(PortRequest, event.request_id, populate_existing=True)
            if port is None:
                return None
            document = None
            if event.kind == porting.EventKind.SIGNED:
                document = await porting.signed_letter(session, event.id)
            customer = await porting.customer_on_slack(session, port)
            return Shown(event, portview.port_view(port), port, customer, document)

    async def _claim_card(self, number: int, **where: Any) -> bool:
        column = PortRequest.slack_ts if "slack_ts" in where else PortRequest.dm_ts
        async with self.services.sessions.begin() as session:
            result = await session.execute(
                update(PortRequest)
                .where(PortRequest.id == number, column.is_(None))
                .values(**where)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    async def _claim(self, event_id: int) -> bool:
        now = self.services.clock()
        async with self.services.sessions.begin() as session:
            result = await session.execute(
                update(PortEvent)
                .where(
                    PortEvent.id == event_id,
                    PortEvent.slack_done_at.is_(None),
                    or_(
                        PortEvent.slack_claimed_at.is_(None),
                        PortEvent.slack_claimed_at < now - LEASE,
                    ),
                )
                .values(slack_claimed_at=now)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    async def _release(self, event_id: int) -> None:
        async with self.services.sessions.begin() as session:
            await session.execute(
                update(PortEvent).where(PortEvent.id == event_id).values(slack_claimed_at=None)
            )

    async def _done(self, event_id: int) -> None:
        async with self.services.sessions.begin() as session:
            await session.execute(
                update(PortEvent)
                .where(PortEvent.id == event_id)
                .values(slack_done_at=self.services.clock())
            )
