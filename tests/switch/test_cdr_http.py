"""POST /freeswitch/cdr over a real socket: the recorded posts replayed byte for byte (a call
counted once), both encodings, the secret, a malformed record (kept, 200, in /healthz) and a
database failure (503, nothing half-stored, taken once FreeSWITCH retries)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import func, select, text

from c2bot.bot.http import build_http_app
from c2bot.bot.services import Services
from c2bot.storage.models import Account, CallRecord, CallRollup, CdrReject
from tests.conftest import World
from tests.support.http import serve_asgi
from tests.support.ratingworld import RatingWorld, add_rating_world
from tests.support.xmlcurl import recorded_posts, replay
from tests.switch.test_cdr import START, as_form, as_json, call_document, records

SECRET = "cdr-s3cret"
POSTS = recorded_posts("json_cdr_post.txt")


@pytest.fixture
async def base(services: Services) -> AsyncIterator[str]:
    """No C2_FREESWITCH_SECRET (loopback only), so recorded bytes go in exactly as sent."""
    async with serve_asgi(build_http_app(services, None, CollectorRegistry())) as url:
        yield url


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def freeswitch_post(
    port: int, body: bytes, form: bool = False, uuid: str = "", authorization: str = ""
) -> bytes:
    """A post as mod_json_cdr makes it (headers as recorded)."""
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    head = (
        f"POST /freeswitch/cdr?uuid={uuid} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        + (f"Authorization: {authorization}\r\n" if authorization else "")
        + "User-Agent: freeswitch-json/1.0\r\n"
        "Accept: */*\r\n"
        f"Content-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def count(services: Services, model: type[CallRecord] | type[CdrReject]) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_recorded_posts_replayed(services: Services, base: str) -> None:
    """Six posts (three calls, B leg first) as recorded: each answered 200 with an empty
    body; three calls stored, each by its A leg; all six again: still three."""
    port = port_of(base)
    for _ in range(2):
        for post in POSTS:
            line = post.raw.split(b"\r\n", 1)[0].decode()
            target = "/freeswitch" + line.split(" ")[1]  # the recorder listened on /cdr
            response = await replay(port, post.to(target))
            assert response.status == 200, post.label
            assert response.body == b""
    stored = await records(services)
    assert set(stored) == {
        "fa50fa50-0000-4000-8000-00000000f001",
        "c0de0000-0000-4000-8000-00000000b001",
        "c0de0000-0000-4000-8000-00000000a001",
    }
    assert stored["c0de0000-0000-4000-8000-00000000b001"].hangup_cause_q850 == 17


@pytest.fixture
async def rates(services: Services, world: World) -> RatingWorld:
    async with services.sessions.begin() as session:
        return await add_rating_world(session)


async def balance(services: Services, number: str) -> Decimal:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.balance).where(Account.number == number))
    assert found is not None
    return found


async def test_both_encodings_and_the_secret(services: Services, rates: RatingWorld) -> None:
    """With C2_FREESWITCH_SECRET: a raw JSON post and a `cdr=` form post are stored and
    charged; the same calls again are not; wrong credentials get 401 and store nothing."""
    secured = Services(
        settings=services.settings.model_copy(update={"freeswitch_secret": SecretStr(SECRET)}),
        engine=services.engine,
    )
    login = "Basic " + base64.b64encode(f"freeswitch:{SECRET}".encode()).decode()
    wrong = "Basic " + base64.b64encode(b"freeswitch:nope").decode()
    async with serve_asgi(build_http_app(secured, None, CollectorRegistry())) as url:
        port = port_of(url)
        json_post = freeswitch_post(port, as_json(call_document("h-1")), False, "h-1", login)
        form_post = freeswitch_post(port, as_form(call_document("h-2")), True, "h-2", login)
        refused = freeswitch_post(port, as_json(call_document("h-3")), False, "h-3", wrong)
        for request in (json_post, form_post, json_post, form_post):
            assert (await replay(port, request)).status == 200
        response = await replay(port, refused)
        assert response.status == 401
    assert set(await records(services)) == {"h-1", "h-2"}
    assert await balance(services, "1001") == Decimal("-0.04")
    assert await balance(services, "R100") == Decimal("-0.02")


async def test_malformed_record_kept_and_in_healthz(services: Services, base: str) -> None:
    """Answered 200 (FreeSWITCH must not retry it forever), kept raw with its reason, counted
    in /healthz with the latest reason."""
    port = port_of(base)
    bad = b'{"variables": {"uuid": "m-1", "start_epoch": "1795635912", "billsec": "ten"}}'
    for body in (b"cdr=%7Bbroken", bad):
        response = await replay(port, freeswitch_post(port, body, form=body.startswith(b"cdr")))
        assert response.status == 200
    async with services.sessions() as session:
        rejects = (await session.scalars(select(CdrReject).order_by(CdrReject.id))).all()
    assert [r.body for r in rejects] == [b"cdr=%7Bbroken", bad]
    assert rejects[0].reason.startswith("not JSON")
    assert rejects[1].reason == "billsec is not a whole number: 'ten'"
    assert await count(services, CallRecord) == 0
    async with httpx.AsyncClient(base_url=base) as client:
        health = (await client.get("/healthz")).json()
    assert health["cdr"]["rejected"] == 2
    assert health["cdr"]["latest_reason"] == "billsec is not a whole number: 'ten'"


async def test_calls_of_no_known_account_are_counted_in_healthz(
    services: Services, rates: RatingWorld, base: str
) -> None:
    """A call whose `accountcode` names no account is stored uncharged; it is in no summary, so
    /healthz counts such calls and names the latest, for the operator to find the dialplan
    that routed it without us."""
    port = port_of(base)
    async with httpx.AsyncClient(base_url=base) as client:
        before = (await client.get("/healthz")).json()["cdr"]
        assert before["without_account"] == 0 and "latest_without_account" not in before
        for minute, (uuid, account) in enumerate((("u-1", "9999"), ("u-2", "1001"), ("u-3", ""))):
            document = call_document(uuid, account=account, start=START + 60 * minute)
            response = await replay(port, freeswitch_post(port, as_json(document), False, uuid))
            assert response.status == 200
        health = (await client.get("/healthz")).json()["cdr"]
    assert health["without_account"] == 2
    latest = health["latest_without_account"]
    assert latest["uuid"] == "u-3" and latest["note"] == "no account: not charged"
    assert set(await records(services)) == {"u-1", "u-2", "u-3"}


async def test_database_failure_answers_503(services: Services, rates: RatingWorld) -> None:
    """When the rollup table cannot be written, the post gets 503 and nothing of it stays
    (record, balance, reject); once the database is back, the retry stores it once."""
    async with serve_asgi(build_http_app(services, None, CollectorRegistry())) as url:
        port = port_of(url)
        post = freeswitch_post(port, as_json(call_document("e-1")), uuid="e-1")
        async with services.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE call_rollups RENAME TO rollups_away"))
        try:
            response = await replay(port, post)
        finally:
            async with services.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE rollups_away RENAME TO call_rollups"))
        assert response.status == 503
        assert await count(services, CallRecord) == 0
        assert await count(services, CdrReject) == 0
        assert await balance(services, "1001") == 0
        await services.engine.dispose()  # connections that knew the old table go
        for _ in range(2):
            assert (await replay(port, post)).status == 200
    assert set(await records(services)) == {"e-1"}
    assert await balance(services, "1001") == Decimal("-0.02")
    async with services.sessions() as session:
        assert await session.scalar(select(func.sum(CallRollup.attempted))) == 1
