"""The fax worker: claim due jobs, render once per request, call out through the switch, retry.

Every step that matters is committed before the next one starts: the attempt (with the call's
uuid) is in the database before `originate` is sent, so after a crash the call can be looked up
on the switch before anything is sent again. A job whose call may have reached the far end is
never retried blindly: if neither the switch nor the recorded events can say how it ended, the
job fails with that said in words, and the sender decides (`/fax retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.config.settings import Settings
from c2bot.faxgw.events import FaxEvents, FaxOutcome
from c2bot.faxgw.render import (
    CoverPage,
    Document,
    RenderOptions,
    RenderRefused,
    RenderSpoolError,
    render_fax,
)
from c2bot.storage.db import SessionFactory
from c2bot.storage.fax import (
    claim_jobs,
    fax_policy,
    orphaned_jobs,
    pages_sent_since,
    take_orphan,
)
from c2bot.storage.models import (
    FAX_FINAL,
    FaxAttempt,
    FaxDocument,
    FaxJob,
    FaxRequest,
    FaxState,
    utcnow,
)
from c2bot.switch.esl import EslClient, EslEvent, SwitchError, SwitchPool, SwitchUnavailable

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
ANSWER_TIMEOUT = 90.0
GONE_GRACE = 5.0
# T.30 completion codes (spandsp) that say our document is at fault: sending again cannot help.
DOCUMENT_ERRORS = {41: "file", 42: "no page", 43: "TIFF", 44: "page", 45: "tag", 46: "header"}
# Codes where the far end cannot take this kind of page at all.
INCAPABLE = {9, 11, 12}
BUSY_CAUSES = {"USER_BUSY", "NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION"}
FINAL_CAUSES = {
    "UNALLOCATED_NUMBER": "the number does not exist",
    "NO_ROUTE_DESTINATION": "the number cannot be reached",
    "INVALID_NUMBER_FORMAT": "the number is not complete",
    "CALL_REJECTED": "the far end rejected the call",
    "NUMBER_CHANGED": "the number has changed",
    "INCOMPATIBLE_DESTINATION": "the far end is not a fax machine",
}
CAUSE_WORDS = {
    "USER_BUSY": "the line was busy",
    "NO_ANSWER": "nobody answered",
    "NO_USER_RESPONSE": "nobody answered",
    "ORIGINATOR_CANCEL": "the call was cancelled",
    "NORMAL_CIRCUIT_CONGESTION": "the network was congested",
    "RECOVERY_ON_TIMER_EXPIRE": "the network did not answer in time",
    "NORMAL_TEMPORARY_FAILURE": "a temporary network failure",
    "DESTINATION_OUT_OF_ORDER": "the far end is out of order",
    **FINAL_CAUSES,
}


@dataclass(frozen=True)
class CallResult:
    """How one call ended, from the spandsp result event or the hangup."""

    outcome: str  # sent | fax-failed | busy | no-answer | network | unknown | not-sent
    text: str
    retry: bool
    code: int | None = None
    pages: int | None = None
    pages_total: int | None = None
    remote_station_id: str = ""
    bit_rate: int | None = None
    hangup_cause: str = ""
    answered: bool = False


def words(cause: str) -> str:
    return CAUSE_WORDS.get(cause, cause.replace("_", " ").lower() or "the call failed")


def result_from_fax_event(event: EslEvent) -> CallResult:
    """Read spandsp::txfaxresult (headers as FreeSWITCH sends them, see the fixtures)."""
    success = event.get("fax-success") == "1"
    code = _int(event.get("fax-result-code"))
    text = event.get("fax-result-text") or event.variable("fax_result_text")
    pages = _int(event.get("fax-document-transferred-pages"))
    total = _int(event.get("fax-document-total-pages"))
    common = {
        "code": code,
        "pages": pages,
        "pages_total": total,
        "remote_station_id": event.get("fax-remote-station-id"),
        "bit_rate": _int(event.get("fax-transfer-rate")),
        "hangup_cause": event.get("Hangup-Cause"),
        "answered": True,
    }
    if success:
        return CallResult(outcome="sent", text=text or "OK", retry=False, **common)  # type: ignore[arg-type]
    if code in DOCUMENT_ERRORS:
        reason = f"the fax pages were not accepted by the fax software ({text}, code {code})"
        return CallResult(outcome="fax-failed", text=reason, retry=False, **common)  # type: ignore[arg-type]
    if code in INCAPABLE:
        reason = f"the receiving machine cannot take these pages ({text})"
        return CallResult(outcome="fax-failed", text=reason, retry=False, **common)  # type: ignore[arg-type]
    reason = f"fax transmission failed: {text or 'no reason given'}" + (
        f" (code {code})" if code is not None else ""
    )
    return CallResult(outcome="fax-failed", text=reason, retry=True, **common)  # type: ignore[arg-type]


def result_from_hangup(cause: str, answered: bool) -> CallResult:
    if cause in BUSY_CAUSES:
        return CallResult("busy", words(cause), retry=True, hangup_cause=cause)
    if cause in FINAL_CAUSES:
        return CallResult("network", words(cause), retry=False, hangup_cause=cause)
    if cause in ("NO_ANSWER", "NO_USER_RESPONSE"):
        return CallResult("no-answer", words(cause), retry=True, hangup_cause=cause)
    what = "the call ended before any fax was exchanged" if answered else words(cause)
    return CallResult("network", what, retry=True, hangup_cause=cause, answered=answered)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def fax_ident(number: str) -> str:
    """A station id as fax machines show it: `+31 20 123 4500` (at most 20 characters)."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number[:20]
    text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return text[:20]


def _quote(value: str) -> str:
    """A channel variable value FreeSWITCH reads back as given (no quotes or braces inside)."""
    clean = "".join(ch for ch in value if ch.isprintable() and ch not in "'{}[]`")
    return f"'{clean}'" if any(ch in clean for ch in " ,=") else clean


def originate_command(
    settings: Settings, job: FaxJob, request: FaxRequest, call_uuid: str, tiff: Path, account: str
) -> str:
    variables = {
        "origination_uuid": call_uuid,
        "origination_caller_id_number": request.caller_number or "anonymous",
        "origination_caller_id_name": request.caller_name or "Fax",
        "fax_ident": fax_ident(request.caller_number),
        "fax_header": request.caller_name or "Fax",
        "fax_enable_t38": "true",
        "fax_enable_t38_request": "true",
        "fax_use_ecm": "true",
        "fax_verbose": "false",
        "ignore_early_media": "true",
        "originate_timeout": "60",
        "accountcode": account,
        "c2_fax_job": str(job.id),
    }
    inner = ",".join(f"{key}={_quote(value)}" for key, value in variables.items())
    return f"originate {{{inner}}}{settings.fax_gateway}{job.number} &txfax({tiff.resolve()})"


class CallRouter:
    """One subscription to the switch's events, handed out by call uuid to whoever waits."""

    def __init__(self, pool: SwitchPool) -> None:
        self.pool = pool
        self.waiters: dict[str, asyncio.Queue[EslEvent]] = {}
        self.task: asyncio.Task[None] | None = None
        self.handlers: list[Callable[[EslEvent], Awaitable[None]]] = []
        self.busy: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="fax call router")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.busy:
            await asyncio.wait(list(self.busy), timeout=10)

    @staticmethod
    async def _handle(handler: Callable[[EslEvent], Awaitable[None]], event: EslEvent) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("handling switch event %s failed", event.name)

    def watch(self, call_uuid: str) -> asyncio.Queue[EslEvent]:
        queue: asyncio.Queue[EslEvent] = asyncio.Queue()
        self.waiters[call_uuid] = queue
        return queue

    def forget(self, call_uuid: str) -> None:
        self.waiters.pop(call_uuid, None)

    async def _run(self) -> None:
        stream = self.pool.subscribe()
        try:
            async for event in stream:
                queue = self.waiters.get(event.unique_id)
                if queue is not None:
                    queue.put_nowait(event)
                    continue
                for handler in self.handlers:
                    # Off the event path: a slow handler (a received fax becoming a PDF) must
                    # not hold up the events of calls in flight.
                    task = asyncio.create_task(self._handle(handler, event))
                    self.busy.add(task)
                    task.add_done_callback(self.busy.discard)
        finally:
            stream.close()


class FaxWorker:
    """Claims and sends fax jobs; `slots` calls at a time in this process."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        pool: SwitchPool,
        events: FaxEvents,
        *,
        router: CallRouter | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.pool = pool
        self.events = events
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.router = router or CallRouter(pool)
        self.slots = settings.fax_workers
        self.running: dict[int, asyncio.Task[None]] = {}
        # Held by the jobs rendering or waiting for a request's pages; gone when none is.
        self.render_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.wakeup = asyncio.Event()
        self.stopping = asyncio.Event()
        self.spool = Path(settings.fax_spool)
        # A lease outlives a missed heartbeat or two; a dead worker's jobs are reconciled once
        # it has lapsed.
        self.lease = timedelta(seconds=settings.fax_lease)
        self.heartbeat_seconds = settings.fax_lease / 3
        self.sent = 0
        self.failed = 0
        self.rendered = 0

    def wake(self) -> None:
        """New work was committed: look now rather than at the next poll."""
        self.wakeup.set()

    async def run(self) -> None:
        (self.spool / "out").mkdir(parents=True, exist_ok=True)
        self.router.handlers.append(self._late_event)
        if self.router.task is None:
            self.router.start()
        while not self.stopping.is_set():
            # Cleared before the round, so a wake() during the round is not lost.
            self.wakeup.clear()
            try:
                await self._round()
            except Exception:
                log.exception("fax worker round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), POLL_SECONDS)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; calls in flight get `grace` seconds, then their leases lapse."""
        self.stopping.set()
        self.wakeup.set()
        if self.running:
            _, pending = await asyncio.wait(list(self.running.values()), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.router.stop()

    def health(self) -> dict[str, object]:
        return {
            "in_flight": len(self.running),
            "sent": self.sent,
            "failed": self.failed,
            "rendered": self.rendered,
        }

    async def _round(self) -> None:
        now = self.clock()
        free = self.slots - len(self.running)
        if free <= 0:
            return
        if not any(c.state == "connected" for c in self.pool.clients.values()):
            # No switch to call through: leave the jobs queued (and unrendered) for a worker
            # that has one, rather than spend attempts that cannot reach anybody.
            return
        async with self.sessions() as session:
            for job_id in await orphaned_jobs(session, now):
                if job_id in self.running or len(self.running) >= self.slots:
                    continue
                if await take_orphan(session, job_id, self.owner, now, self.lease):
                    self._launch(job_id, self._reconcile)
            free = self.slots - len(self.running)
            if free <= 0:
                return
            for job_id in await claim_jobs(session, self.owner, now, self.lease, free):
                self._launch(job_id, self._process)

    def _launch(self, job_id: int, work: Callable[[int], Awaitable[None]]) -> None:
        async def guarded() -> None:
            heartbeat = asyncio.create_task(self._heartbeat(job_id))
            try:
                await work(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "fax job %s: unexpected error; its lease will lapse and it is reconciled",
                    job_id,
                )
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
                self.running.pop(job_id, None)
                self.wakeup.set()

        self.running[job_id] = asyncio.create_task(guarded(), name=f"fax job {job_id}")

    async def _heartbeat(self, job_id: int) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                async with self.sessions() as session:
                    await session.execute(
                        update(FaxJob)
                        .where(FaxJob.id == job_id, FaxJob.lease_owner == self.owner)
                        .values(lease_until=self.clock() + self.lease)
                    )
                    await session.commit()
            except Exception:
                # One failed beat must not end the others: the lease has two more beats to go.
                log.warning("fax job %s: lease heartbeat failed; trying again", job_id)

    # --- one job -------------------------------------------------------------------------------

    async def _process(self, job_id: int) -> None:
        tiff = await self._rendered(job_id)
        if tiff is None:
            return
        await self._call(job_id, tiff)

    async def _rendered(self, job_id: int) -> Path | None:
        """The request's fax pages, rendering them first if no job of it has yet. The jobs of
        one request (a fax to several numbers) in this process render it once: the others wait
        for the first and use its pages."""
        async with self.sessions() as session:
            request_id = await session.scalar(select(FaxJob.request_id).where(FaxJob.id == job_id))
        if request_id is None:
            return None
        lock = self.render_locks.get(request_id)
        if lock is None:
            lock = self.render_locks[request_id] = asyncio.Lock()
        async with lock:
            return await self._render_once(job_id)

    async def _render_once(self, job_id: int) -> Path | None:
        async with self.sessions() as session:
            job = await session.get(FaxJob, job_id)
            if job is None or job.state in FAX_FINAL or job.lease_owner != self.owner:
                return None
            request = job.request
            rendered = Path(request.tiff_path) if request.tiff_path else None
            if rendered is not None and await asyncio.to_thread(rendered.exists):
                return await self._within_daily_limit(session, job, rendered)
            job.state = FaxState.RENDERING
            await session.commit()
            documents = list(
                await session.scalars(
                    select(FaxDocument)
                    .where(FaxDocument.request_id == request.id)
                    .order_by(FaxDocument.position)
                )
            )
            docs = [Document(d.filename, d.content_type, d.data) for d in documents]
            cover = None
            if request.cover_text and docs:
                cover = CoverPage(
                    to=job.number,
                    sender=request.caller_name or request.account.company,
                    subject=request.subject,
                    text=request.cover_text,
                    date=f"{request.created_at:%Y-%m-%d %H:%M} UTC",
                )
            elif request.cover_text:
                docs = [Document("message.txt", "text/plain", request.cover_text.encode())]
            out = self.spool / "out" / f"request-{request.id}.tif"
            options = RenderOptions(
                resolution=self.settings.fax_resolution,
                paper=self.settings.fax_paper,
                max_pages=self.settings.fax_max_pages,
            )
            try:
                result = await render_fax(docs, out, options, cover)
            except RenderRefused as refused:
                await self._refuse_request(session, request.id, refused.message)
                return None
            except RenderSpoolError as error:
                # Our spool, not the sender's document: keep the job and try again later.
                wait = min(self.settings.fax_retry_wait, 60)
                log.error("fax job %s: %s; trying again in %ss", job_id, error, wait)
                await session.execute(
                    update(FaxJob)
                    .where(FaxJob.id == job_id, FaxJob.lease_owner == self.owner)
                    .values(
                        state=FaxState.QUEUED,
                        lease_owner=None,
                        lease_until=None,
                        next_attempt_at=self.clock() + timedelta(seconds=wait),
                        result_text="the fax pages could not be stored on our side; "
                        "they are prepared again shortly",
                    )
                )
                await session.commit()
                return None
            self.rendered += 1
            request.tiff_path = str(result.path)
            request.pages = result.pages
            await session.commit()
            # Cancelled while it rendered? Then it stays cancelled.
            back = await session.execute(
                update(FaxJob)
                .where(
                    FaxJob.id == job_id,
                    FaxJob.state == FaxState.RENDERING,
                    FaxJob.lease_owner == self.owner,
                )
                .values(state=FaxState.QUEUED)
            )
            await session.commit()
            if back.rowcount != 1:  # type: ignore[attr-defined]
                return None
            await session.refresh(job)
            return await self._within_daily_limit(session, job, result.path)

    async def _within_daily_limit(
        self, session: AsyncSession, job: FaxJob, tiff: Path
    ) -> Path | None:
        policy = await fax_policy(session, self.settings, job.account_id)
        if not policy.daily_pages:
            return tiff
        account = job.request.account
        local = self.clock().astimezone(ZoneInfo(account.timezone))
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        used = await pages_sent_since(session, job.account_id, start)
        pages = job.request.pages or 0
        if used + pages > policy.daily_pages:
            await self._finish(
                session,
                job,
                FaxState.FAILED,
                f"the daily limit of {policy.daily_pages} fax pages for account {account.number} "
                f"would be passed ({used} sent today, this fax has {pages})",
            )
            return None
        return tiff

    async def _refuse_request(self, session: AsyncSession, request_id: int, why: str) -> None:
        jobs = list(
            await session.scalars(
                select(FaxJob).where(
                    FaxJob.request_id == request_id, FaxJob.state.not_in(FAX_FINAL)
                )
            )
        )
        for job in jobs:
            await self._finish(session, job, FaxState.FAILED, why, commit=False)
        await session.commit()
        for job in jobs:
            await self.events.after(FaxOutcome("failed", job_id=job.id))

    async def _call(self, job_id: int, tiff: Path) -> None:
        async with self.sessions() as session:
            job = await session.get(FaxJob, job_id)
            if job is None or job.state in FAX_FINAL or job.lease_owner != self.owner:
                return
            policy = await fax_policy(session, self.settings, job.account_id)
            try:
                client = self.pool.get(policy.server)
            except SwitchError as error:
                await self._finish(session, job, FaxState.FAILED, f"fax server: {error}")
                return
            call_uuid = str(uuid.uuid4())
            job.state = FaxState.DIALING
            job.call_uuid = call_uuid
            job.server = client.name
            job.attempts += 1
            job.started_at = job.started_at or self.clock()
            session.add(
                FaxAttempt(
                    job_id=job.id, call_uuid=call_uuid, server=client.name, started_at=self.clock()
                )
            )
            command = originate_command(
                self.settings, job, job.request, call_uuid, tiff, job.request.account.number
            )
            await session.commit()
        events = self.router.watch(call_uuid)
        try:
            result = await self._originate(client, command, call_uuid, events, job_id)
        finally:
            self.router.forget(call_uuid)
        await self._record(job_id, call_uuid, result)

    async def _originate(
        self,
        client: EslClient,
        command: str,
        call_uuid: str,
        events: asyncio.Queue[EslEvent],
        job_id: int,
    ) -> CallResult:
        if client.state != "connected":
            # Not connected before we asked: nothing can have gone out.
            return CallResult("not-sent", f"the fax server {client.name} is unreachable", True)
        try:
            reply = await client.bgapi(command, timeout=ANSWER_TIMEOUT)
        except SwitchUnavailable as error:
            # The command may have reached the switch: find out before anything is retried.
            return await self._after_lost_reply(client, call_uuid, events, str(error))
        except SwitchError as error:
            words = error.reply.removeprefix("-ERR").split()
            return result_from_hangup(words[0] if words else "NORMAL_TEMPORARY_FAILURE", False)
        log.debug("originate for job %s: %s", job_id, reply.strip())
        async with self.sessions() as session:
            await session.execute(
                update(FaxJob).where(FaxJob.id == job_id).values(state=FaxState.SENDING)
            )
            await session.execute(
                update(FaxAttempt)
                .where(FaxAttempt.call_uuid == call_uuid)
                .values(answered_at=self.clock())
            )
            await session.commit()
        return await self._await_end(client, call_uuid, events, answered=True)

    async def _after_lost_reply(
        self, client: EslClient, call_uuid: str, events: asyncio.Queue[EslEvent], why: str
    ) -> CallResult:
        """The originate's answer never came: find out from the switch whether a call exists."""
        return await self._await_end(client, call_uuid, events, answered=False, unsure=why)

    async def _await_end(
        self,
        client: EslClient,
        call_uuid: str,
        events: asyncio.Queue[EslEvent],
        *,
        answered: bool,
        unsure: str = "",
    ) -> CallResult:
        deadline = asyncio.get_running_loop().time() + self.settings.fax_call_timeout
        hangup: EslEvent | None = None
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                with contextlib.suppress(SwitchError):
                    await client.api(f"uuid_kill {call_uuid}")
                return CallResult(
                    "unknown",
                    "the fax call took too long and was ended; it is not sent again "
                    "automatically in case it reached the recipient (use /fax retry)",
                    retry=False,
                    answered=answered,
                )
            try:
                event = await asyncio.wait_for(events.get(), min(remaining, 15.0))
            except TimeoutError:
                if hangup is not None:
                    return result_from_hangup(hangup.get("Hangup-Cause"), answered)
                if not await self._call_exists(client, call_uuid):
                    return await self._gone(events, answered, unsure)
                continue
            if event.subclass == "spandsp::txfaxresult":
                return result_from_fax_event(event)
            if event.name == "CHANNEL_ANSWER":
                answered = True
            if event.name == "CHANNEL_HANGUP_COMPLETE":
                hangup = event
                # spandsp's result comes just before the hangup; allow a moment for stragglers.
                try:
                    late = await asyncio.wait_for(events.get(), GONE_GRACE)
                except TimeoutError:
                    return result_from_hangup(event.get("Hangup-Cause"), answered)
                if late.subclass == "spandsp::txfaxresult":
                    return result_from_fax_event(late)

    async def _call_exists(self, client: EslClient, call_uuid: str) -> bool:
        try:
            answer = await client.api(f"uuid_exists {call_uuid}")
        except SwitchError:
            return True  # cannot tell: keep waiting rather than guess
        return answer.strip() == "true"

    async def _gone(
        self, events: asyncio.Queue[EslEvent], answered: bool, unsure: str
    ) -> CallResult:
        with contextlib.suppress(TimeoutError):
            event = await asyncio.wait_for(events.get(), GONE_GRACE)
            if event.subclass == "spandsp::txfaxresult":
                return result_from_fax_event(event)
        if answered:
            return CallResult(
                "unknown",
                "the call ended but the switch never said whether the fax went through; it is "
                "not sent again automatically (use /fax retry after checking with the recipient)",
                retry=False,
                answered=True,
            )
        why = f" ({unsure})" if unsure else ""
        return CallResult("not-sent", f"the call never started{why}", retry=True)

    async def _record(self, job_id: int, call_uuid: str, result: CallResult) -> None:
        async with self.sessions() as session:
            job = await session.get(FaxJob, job_id)
            if job is None or job.call_uuid != call_uuid or job.state in FAX_FINAL:
                # Another worker took the job over (our lease lapsed) and owns its outcome now.
                log.warning(
                    "fax job %s: result of call %s not applied (the job moved on)",
                    job_id, call_uuid,
                )  # fmt: skip
                return
            await self._apply(session, job, call_uuid, result)

    async def _apply(
        self, session: AsyncSession, job: FaxJob, call_uuid: str, result: CallResult
    ) -> None:
        attempt = await session.scalar(select(FaxAttempt).where(FaxAttempt.call_uuid == call_uuid))
        if attempt is not None:
            attempt.ended_at = self.clock()
            attempt.outcome = result.outcome
            attempt.result_code = result.code
            attempt.result_text = result.text
            attempt.hangup_cause = result.hangup_cause
            attempt.pages = result.pages
        job.result_code = result.code
        job.hangup_cause = result.hangup_cause
        job.pages_sent = result.pages
        if result.pages_total:
            job.pages_total = result.pages_total
        if result.remote_station_id:
            job.remote_station_id = result.remote_station_id[:100]
        if result.bit_rate:
            job.bit_rate = result.bit_rate
        if result.outcome == "sent":
            self.sent += 1
            await self._finish(session, job, FaxState.SENT, result.text)
            return
        if result.outcome == "not-sent":
            job.attempts = max(0, job.attempts - 1)  # nothing went out: not an attempt
        if result.retry and job.attempts < job.max_attempts:
            wait = (
                self.settings.fax_busy_wait
                if result.outcome == "busy"
                else (self.settings.fax_retry_wait)
            )
            if result.outcome == "not-sent":
                wait = min(wait, 60)
            job.state = FaxState.RETRY_WAIT
            job.result_text = result.text
            job.next_attempt_at = self.clock() + timedelta(seconds=wait)
            job.lease_owner = None
            job.lease_until = None
            job.call_uuid = None
            await session.commit()
            log.info(
                "fax job %s: %s; retry %s of %s in %ss",
                job.id,
                result.text,
                job.attempts + 1,
                job.max_attempts,
                wait,
            )
            return
        self.failed += 1
        text = result.text
        if result.retry:
            text = f"{text} (after {job.attempts} attempt{'s' if job.attempts != 1 else ''})"
        await self._finish(session, job, FaxState.FAILED, text)

    async def _finish(
        self, session: AsyncSession, job: FaxJob, state: FaxState, text: str, commit: bool = True
    ) -> None:
        job.state = state
        job.result_text = text
        job.finished_at = self.clock()
        job.lease_owner = None
        job.lease_until = None
        outcome = FaxOutcome("sent" if state is FaxState.SENT else "failed", job_id=job.id)
        await self.events.within(session, outcome)
        if commit:
            await session.commit()
            await self.events.after(outcome)

    # --- after a crash ---------------------------------------------------------------------------

    async def _reconcile(self, job_id: int) -> None:
        """A job another worker (or this process, before a restart) left in the middle."""
        async with self.sessions() as session:
            job = await session.get(FaxJob, job_id)
            if job is None or job.lease_owner != self.owner:
                return
            if job.state is FaxState.RENDERING or job.call_uuid is None:
                job.state = FaxState.QUEUED
                job.lease_owner = None
                job.lease_until = None
                await session.commit()
                return
            attempt = await session.scalar(
                select(FaxAttempt).where(FaxAttempt.call_uuid == job.call_uuid)
            )
            if attempt is not None and attempt.outcome:
                # The result event reached us after the worker died: it says how it ended.
                recorded = CallResult(
                    outcome=attempt.outcome,
                    text=attempt.result_text,
                    retry=attempt.outcome not in ("sent", "unknown")
                    and (attempt.result_code not in DOCUMENT_ERRORS),
                    code=attempt.result_code,
                    pages=attempt.pages,
                    hangup_cause=attempt.hangup_cause,
                )
                await self._apply(session, job, job.call_uuid, recorded)
                return
            call_uuid, server, answered = job.call_uuid, job.server, job.state is FaxState.SENDING
        try:
            client = self.pool.get(server)
        except SwitchError:
            client = self.pool.get(None)
        events = self.router.watch(call_uuid)
        try:
            if not await self._call_exists(client, call_uuid):
                result = await self._gone(events, answered, "the worker stopped before the call")
                if not answered:
                    result = CallResult(
                        "unknown",
                        "the worker stopped while dialling, and the switch has no such call; "
                        "it is not sent again automatically in case it reached the recipient "
                        "(use /fax retry after checking)",
                        retry=False,
                    )
            else:
                result = await self._await_end(client, call_uuid, events, answered=answered)
        finally:
            self.router.forget(call_uuid)
        await self._record(job_id, call_uuid, result)

    async def _late_event(self, event: EslEvent) -> None:
        """A fax result for a call nobody in this process waits for: keep it on the attempt."""
        if event.subclass != "spandsp::txfaxresult":
            return
        result = result_from_fax_event(event)
        async with self.sessions() as session:
            await session.execute(
                update(FaxAttempt)
                .where(FaxAttempt.call_uuid == event.unique_id, FaxAttempt.outcome == "")
                .values(
                    outcome=result.outcome,
                    result_code=result.code,
                    result_text=result.text,
                    pages=result.pages,
                    ended_at=self.clock(),
                )
            )
            await session.commit()
