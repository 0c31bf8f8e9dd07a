"""Fax2Mail: a fax received on a FOIP DID becomes a PDF mailed to that DID's one address.

FreeSWITCH's `spandsp::rxfaxresult` event carries the channel's variables, so the event alone
names the file (`variable_fax_filename`) and the DID (`variable_c2_did`, which our FOIP dialplan
sets, else the destination number). The received fax is stored once per call (several
processes may see the same event), then the mail goes into the outbox in the same transaction:
if the relay is down it waits there and is retried, never dropped. Failed and partial faxes are
reported too, with whatever pages arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from c2bot.config.settings import Settings
from c2bot.faxgw.events import FaxEvents, FaxOutcome
from c2bot.faxgw.render import received_to_pdf
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import Did, ReceivedFax, utcnow
from c2bot.switch.esl import EslEvent

log = logging.getLogger(__name__)

RX_RESULT = "spandsp::rxfaxresult"


class FaxReceiver:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        events: FaxEvents,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.events = events
        self.clock = clock
        self.received = 0

    async def on_event(self, event: EslEvent) -> None:
        if event.subclass == RX_RESULT:
            await self.receive(event)

    async def receive(self, event: EslEvent) -> int | None:
        """Store and mail one received fax; returns its id, or None if already handled."""
        call_uuid = event.unique_id or event.get("uuid")
        number = self._did_number(event)
        path = event.variable("fax_filename")
        success = event.get("fax-success") == "1"
        pages = _int(event.get("fax-document-transferred-pages")) or 0
        code = _int(event.get("fax-result-code"))
        text = event.get("fax-result-text")
        caller = event.get("Caller-Caller-ID-Number") or event.variable("caller_id_number")
        remote = event.get("fax-remote-station-id")
        pdf: bytes | None = None
        outcome = "mailed"
        problem = ""
        if pages and path and await asyncio.to_thread(os.path.exists, path):
            try:
                pdf = await received_to_pdf(Path(path))
            except Exception as error:  # a corrupt file from the line: report, keep the TIFF
                log.warning("received fax %s: %s cannot be converted: %s", call_uuid, path, error)
                problem = f"the received pages could not be read ({error})"
        elif pages:
            problem = "the received file is missing on the fax server's spool"
        async with self.sessions() as session:
            did = await session.scalar(select(Did).where(Did.number == number))
            row = ReceivedFax(
                call_uuid=call_uuid,
                did_number=number,
                account_id=did.account_id if did else None,
                caller_id=caller[:64],
                remote_station_id=remote[:100],
                success=success and not problem,
                result_code=code,
                result_text=problem or text,
                pages=pages,
                tiff_path=path[:500],
                email=(did.destination or "") if did and did.forward_type == "foip" else "",
                received_at=self.clock(),
            )
            if not row.email:
                outcome = "no-foip-did"
                log.warning(
                    "fax received on %s, which is not routed as FOIP; kept, not mailed", number
                )
            row.outcome = outcome
            session.add(row)
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                return None
            result = FaxOutcome("received", received_id=row.id, pdf=pdf)
            if row.email:
                await self.events.within(session, result)
            await session.commit()
            received_id = row.id
        self.received += 1
        if outcome == "mailed":
            await self.events.after(result)
        return received_id

    def _did_number(self, event: EslEvent) -> str:
        raw = event.variable("c2_did") or event.get("Caller-Destination-Number")
        try:
            parsed = phonenumbers.parse(raw, self.settings.fax_country)
        except phonenumbers.NumberParseException:
            return raw[:32]
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _int(text: str) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
