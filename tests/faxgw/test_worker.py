"""The fax worker against the strict Event Socket peer, which really faxes with spandsp."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from c2bot.faxgw.events import FaxOutcome
from c2bot.faxgw.receive import FaxReceiver
from c2bot.faxgw.worker import CallRouter, FaxWorker
from c2bot.handlers import fax
from c2bot.storage.db import create_engine
from c2bot.storage.models import (
    Channel,
    FaxAttempt,
    FaxJob,
    FaxState,
    ReceivedFax,
)
from c2bot.switch.esl import SwitchPool, pool_from_settings
from tests.conftest import World, missing_server, test_settings
from tests.support import spandsp
from tests.support.eslpeer import EslPeer, running_peer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"
TO = "+31201234567"


@dataclass
class Recorder:
    """A FaxEvents listener that keeps what the worker reported."""

    outcomes: list[FaxOutcome] = field(default_factory=list)
    committed: list[FaxOutcome] = field(default_factory=list)

    async def within(self, session: AsyncSession, outcome: FaxOutcome) -> None:
        self.outcomes.append(outcome)

    async def after(self, outcome: FaxOutcome) -> None:
        self.committed.append(outcome)


@dataclass
class Rig:
    services: Services
    peer: EslPeer
    pool: SwitchPool
    worker: FaxWorker
    recorder: Recorder
    world: World

    async def send(self, *numbers: str, text: str = "Hello by fax", **kw: object) -> list[int]:
        ctx = self.services.context(self.world.customer, Channel.SHELL)
        sub = fax.FaxSubmission(numbers=list(numbers) or [TO], text=text, **kw)  # type: ignore[arg-type]
        accepted = await fax.submit_fax(ctx, sub)
        self.worker.wake()
        return [job for job, _ in accepted.jobs]

    async def job(self, job_id: int) -> FaxJob:
        async with self.services.sessions() as session:
            job = await session.get(FaxJob, job_id)
            assert job is not None
            return job

    async def until(self, job_id: int, *states: FaxState, timeout: float = 60.0) -> FaxJob:
        async def settled() -> FaxJob:
            while True:
                job = await self.job(job_id)
                if job.state in states:
                    return job
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(settled(), timeout)


def fax_settings(database_url: str, port: int, spool: Path, **extra: object) -> Settings:
    return test_settings(
        database_url,
        C2_ESL_PORT=port,
        C2_FAX_SPOOL=str(spool),
        C2_FAX_RETRY_WAIT=1,
        C2_FAX_BUSY_WAIT=2,
        **extra,
    )


@pytest.fixture
async def peer() -> AsyncIterator[EslPeer]:
    if not spandsp.available():
        from tests.conftest import missing_server

        missing_server("libspandsp2")
    async with running_peer() as running:
        yield running


async def start_worker(
    settings: Settings, services: Services, recorder: Recorder, **kw: object
) -> tuple[SwitchPool, FaxWorker, asyncio.Task[None]]:
    pool = pool_from_settings(settings)
    await pool.start()
    assert await pool.get().wait_connected(5)
    worker = FaxWorker(settings, services.sessions, pool, recorder, **kw)  # type: ignore[arg-type]
    return pool, worker, asyncio.create_task(worker.run())


@pytest.fixture
async def rig(
    database_url: str, peer: EslPeer, tmp_path: Path, world: World, services: Services
) -> AsyncIterator[Rig]:
    settings = fax_settings(database_url, peer.port, tmp_path / "spool", C2_FAX_RETRIES=2)
    services.settings = settings
    recorder = Recorder()
    pool, worker, task = await start_worker(settings, services, recorder)
    try:
        yield Rig(services, peer, pool, worker, recorder, world)
    finally:
        await worker.stop(grace=1)
        await task
        await pool.stop()


async def test_text_fax_is_rendered_sent_and_reported(rig: Rig) -> None:
    [job_id] = await rig.send(TO)
    job = await rig.until(job_id, FaxState.SENT)
    assert job.pages_sent == 1 and job.attempts == 1
    assert job.remote_station_id  # spandsp's receiver identified itself
    [call] = rig.peer.originates
    assert call.number == TO and call.application == "txfax"
    assert Path(call.file).name == f"request-{job.request_id}.tif"
    assert call.variables["origination_uuid"] == job.call_uuid
    assert call.variables["accountcode"] == "1001"
    assert call.variables["fax_enable_t38"] == "true"
    assert call.fax.success and call.fax.pages_transferred == 1
    async with rig.services.sessions() as session:
        attempts = list(await session.scalars(select(FaxAttempt)))
    assert [(a.outcome, a.pages) for a in attempts] == [("sent", 1)]
    assert attempts[0].answered_at is not None
    assert [o.kind for o in rig.recorder.committed] == ["sent"]


async def test_busy_is_retried_then_failed_in_words(rig: Rig) -> None:
    rig.peer.lines[TO] = "busy"
    [job_id] = await rig.send(TO)
    job = await rig.until(job_id, FaxState.FAILED)
    assert job.attempts == 3 and job.max_attempts == 3
    assert job.result_text == "the line was busy (after 3 attempts)"
    assert job.hangup_cause == "USER_BUSY"
    assert len(rig.peer.originates) == 3
    assert [o.kind for o in rig.recorder.committed] == ["failed"]


async def test_silent_line_fails_with_the_t30_reason(rig: Rig) -> None:
    rig.peer.lines[TO] = "silence"
    rig.peer.silence_seconds = 5
    ctx = rig.services.context(rig.world.reseller, Channel.SHELL)
    await fax.set_fax_settings(ctx, fax.FaxSettingsChange(account="1001", retries=0))
    [job_id] = await rig.send(TO)
    job = await rig.until(job_id, FaxState.FAILED)
    assert job.result_code == 49
    assert "The call dropped prematurely" in job.result_text
    assert job.attempts == 1


async def test_refused_document_fails_every_job_of_the_request(rig: Rig) -> None:
    encrypted = (Path(__file__).parent.parent / "data" / "encrypted.pdf").read_bytes()
    ids = await rig.send(
        TO, "+31201234568", text="", files=[fax.FaxFile("secret.pdf", "application/pdf", encrypted)]
    )
    for job_id in ids:
        job = await rig.until(job_id, FaxState.FAILED)
        assert "password" in job.result_text
    assert rig.peer.originates == []


async def test_received_fax_becomes_a_pdf_for_the_foip_address(rig: Rig, tmp_path: Path) -> None:
    ctx = rig.services.context(rig.world.staff, Channel.SHELL)
    await fax.set_did_foip(ctx, "+31201234500", "faxin@acme.nl", "1001")
    recorder = Recorder()
    receiver = FaxReceiver(rig.services.settings, rig.services.sessions, recorder)
    router = CallRouter(rig.pool)
    router.handlers.append(receiver.on_event)
    router.start()
    try:
        await asyncio.sleep(0.1)
        rx = tmp_path / "spool" / "rx" / "in.tif"
        rx.parent.mkdir(parents=True, exist_ok=True)
        variables = {"c2_did": "+31201234500", "accountcode": "1001"}
        await rig.peer.deliver_fax(
            FIXTURES / "tx_fax.tif", rx, variables=variables, caller_id="+31107654321"
        )
        await asyncio.wait_for(_until(lambda: bool(recorder.committed)), 20)
    finally:
        await router.stop()
    [outcome] = recorder.outcomes
    assert outcome.kind == "received" and outcome.pdf is not None
    assert len(pypdf.PdfReader(io.BytesIO(outcome.pdf)).pages) == 2
    async with rig.services.sessions() as session:
        row = await session.scalar(select(ReceivedFax))
    assert row is not None
    assert (row.did_number, row.email, row.pages, row.success) == (
        "+31201234500", "faxin@acme.nl", 2, True
    )  # fmt: skip
    assert row.caller_id == "+31107654321" and row.account_id == rig.world.customer.account_id


async def _until(check: Callable[[], bool]) -> None:
    while not check():  # noqa: ASYNC110 (a listener's list, polled)
        await asyncio.sleep(0.05)


async def test_a_crashed_call_is_reconciled_never_resent(rig: Rig) -> None:
    """A job left in `sending` by a dead worker, whose call the switch no longer has."""
    [job_id] = await rig.send(TO)
    await rig.until(job_id, FaxState.SENT)
    ghost = str(uuid.uuid4())
    async with rig.services.sessions.begin() as session:
        job = await session.get(FaxJob, job_id)
        assert job is not None
        job.state, job.call_uuid, job.lease_owner, job.lease_until = (
            FaxState.SENDING, ghost, "dead-worker", None
        )  # fmt: skip
        session.add(FaxAttempt(job_id=job_id, call_uuid=ghost, server="default"))
    rig.worker.wake()
    job = await rig.until(job_id, FaxState.FAILED, timeout=30)
    assert "not sent again automatically" in job.result_text
    assert len(rig.peer.originates) == 1  # the original call only
    assert f"api uuid_exists {ghost}" in rig.peer.commands


async def test_a_result_that_arrived_after_the_crash_is_used(rig: Rig) -> None:
    [job_id] = await rig.send(TO)
    await rig.until(job_id, FaxState.SENT)
    ghost = str(uuid.uuid4())
    async with rig.services.sessions.begin() as session:
        job = await session.get(FaxJob, job_id)
        assert job is not None
        job.state, job.call_uuid, job.lease_owner = FaxState.DIALING, ghost, None
        session.add(
            FaxAttempt(job_id=job_id, call_uuid=ghost, server="default", outcome="sent",
                       result_text="OK", pages=1)
        )  # fmt: skip
    rig.worker.wake()
    job = await rig.until(job_id, FaxState.SENT, timeout=30)
    assert len(rig.peer.originates) == 1


async def four_slots_and_a_fax(
    database_url: str,
    peer: EslPeer,
    tmp_path: Path,
    world: World,
    services: Services,
    numbers: list[str],
) -> tuple[Settings, fax.FaxAccepted]:
    """Settings for workers of four slots each, and one text fax accepted to `numbers`."""
    settings = fax_settings(database_url, peer.port, tmp_path / "spool", C2_FAX_WORKERS=4)
    services.settings = settings
    ctx = services.context(world.customer, Channel.SHELL)
    accepted = await fax.submit_fax(ctx, fax.FaxSubmission(numbers=numbers, text="to many"))
    return settings, accepted


async def test_two_workers_never_send_a_job_twice(
    database_url: str, peer: EslPeer, tmp_path: Path, world: World, services: Services
) -> None:
    numbers = [f"+3120123{4500 + i}" for i in range(12)]
    settings, accepted = await four_slots_and_a_fax(
        database_url, peer, tmp_path, world, services, numbers
    )
    engines = [create_engine(database_url) for _ in range(2)]
    workers: list[tuple[SwitchPool, FaxWorker, asyncio.Task[None]]] = []
    try:
        for engine in engines:
            own = Services(settings=settings, engine=engine)
            workers.append(await start_worker(settings, own, Recorder()))

        async def jobs() -> list[tuple[int, FaxState, int, str]]:
            async with services.sessions() as session:
                rows = await session.execute(
                    select(FaxJob.id, FaxJob.state, FaxJob.attempts, FaxJob.result_text)
                )
                return [tuple(row) for row in rows]  # type: ignore[misc]

        async def all_sent() -> None:
            while {state for _, state, _, _ in await jobs()} != {FaxState.SENT}:  # noqa: ASYNC110
                await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(all_sent(), 90)
        except TimeoutError:
            pytest.fail(f"not every job was sent: {await jobs()}")
    finally:
        for pool, worker, task in workers:
            await worker.stop(grace=1)
            await task
            await pool.stop()
        for engine in engines:
            await engine.dispose()
    dialled = sorted(call.number for call in peer.originates)
    assert dialled == sorted(numbers)
    assert len(accepted.jobs) == 12
    assert sum(w.sent for _, w, _ in workers) == 12
    # Each process renders the request's pages once, however many of its jobs start together.
    assert [w.rendered for _, w, _ in workers] in ([1, 1], [1, 0], [0, 1])


async def test_jobs_of_one_request_in_one_worker_render_it_once(
    database_url: str, peer: EslPeer, tmp_path: Path, world: World, services: Services
) -> None:
    numbers = [f"+3120123{4600 + i}" for i in range(4)]
    settings, accepted = await four_slots_and_a_fax(
        database_url, peer, tmp_path, world, services, numbers
    )
    pool, worker, task = await start_worker(settings, services, Recorder())
    try:
        rig = Rig(services, peer, pool, worker, Recorder(), world)
        for job_id, _ in accepted.jobs:
            await rig.until(job_id, FaxState.SENT)
    finally:
        await worker.stop(grace=1)
        await task
        await pool.stop()
    assert worker.rendered == 1 and worker.health()["rendered"] == 1
    assert sorted(call.number for call in peer.originates) == numbers
    assert len({call.file for call in peer.originates}) == 1


async def test_a_spool_that_cannot_be_written_keeps_the_job_for_later(rig: Rig) -> None:
    """The pages cannot be written (the spool's folder is gone): the job waits and goes out
    once the spool is back, instead of failing as if the sender's document were damaged."""
    out = rig.worker.spool / "out"
    out.rmdir()
    out.write_text("not a folder")
    [job_id] = await rig.send(TO)

    async def noted() -> FaxJob:
        while not (job := await rig.job(job_id)).result_text:  # noqa: ASYNC110 (polled)
            await asyncio.sleep(0.05)
        return job

    job = await asyncio.wait_for(noted(), 30)
    assert job.state is FaxState.QUEUED
    assert job.result_text.startswith("the fax pages could not be stored on our side")
    assert (job.attempts, job.lease_owner) == (0, None)
    assert job.next_attempt_at > job.created_at
    assert rig.peer.originates == []
    out.unlink()
    out.mkdir()
    job = await rig.until(job_id, FaxState.SENT, timeout=90)
    assert job.attempts == 1 and len(rig.peer.originates) == 1


async def test_faxes_wait_while_the_switch_is_down(
    database_url: str, tmp_path: Path, world: World, services: Services
) -> None:
    """No switch: jobs stay queued (not rendered, no attempt spent) and go out once it is back."""
    if not spandsp.available():
        missing_server("libspandsp2")
    peer = EslPeer()
    await peer.start()
    port = peer.port
    await peer.stop()
    settings = fax_settings(database_url, port, tmp_path / "spool")
    services.settings = settings
    pool = pool_from_settings(settings, backoff=(0.1, 0.3))
    await pool.start()
    worker = FaxWorker(settings, services.sessions, pool, Recorder())
    task = asyncio.create_task(worker.run())
    try:
        ctx = services.context(world.customer, Channel.SHELL)
        accepted = await fax.submit_fax(ctx, fax.FaxSubmission(numbers=[TO], text="x"))
        job_id = accepted.jobs[0][0]
        await asyncio.sleep(1.5)
        async with services.sessions() as session:
            job = await session.get(FaxJob, job_id)
            assert job is not None
            assert (job.state, job.attempts, job.lease_owner) == (FaxState.QUEUED, 0, None)
            assert job.request.tiff_path is None
        await peer.start(port=port)
        assert await pool.get().wait_connected(10)
        worker.wake()

        async def sent() -> None:
            while True:
                async with services.sessions() as session:
                    done = await session.get(FaxJob, job_id)
                    if done is not None and done.state is FaxState.SENT:
                        return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(sent(), 30)
        assert [call.number for call in peer.originates] == [TO]
    finally:
        await worker.stop(grace=1)
        await task
        await pool.stop()
        await peer.stop()
