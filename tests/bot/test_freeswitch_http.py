"""The mod_xml_curl endpoints over a real socket: recorded posts replayed byte for byte, the
secret (or loopback only), and failures answered "not found"."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select

from c2bot.bot.freeswitch_http import FreeSwitchEndpoints
from c2bot.bot.http import build_http_app
from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from c2bot.storage.crypto import seal
from c2bot.storage.db import create_engine
from c2bot.storage.models import Account, SipDevice
from tests.conftest import World, test_settings
from tests.support.http import serve_asgi
from tests.support.xmlcurl import Post, is_not_found, parse_document, recorded_posts, replay

SECRET = "fs:s3cret/+="
REGISTER, USER_DATA = recorded_posts("xml_curl_directory.txt")
CONFIGURATION = recorded_posts("xml_curl_configuration.txt")
DIALPLAN = recorded_posts("xml_curl_dialplan.txt")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


RIGHT = basic("freeswitch", SECRET)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The recordings' SIP domain is 127.0.0.1; FreeSWITCH logs in with SECRET."""
    return test_settings(database_url, C2_SIP_DOMAIN="127.0.0.1", C2_FREESWITCH_SECRET=SECRET)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def port(services: Services, registry: CollectorRegistry) -> AsyncIterator[int]:
    async with serve_asgi(build_http_app(services, None, registry)) as base:
        yield int(base.rsplit(":", 1)[1])


async def add_device(services: Services, sealed: str | None = None) -> None:
    """Device 1000 of account 1001 with password 1234, as the recordings have it."""
    async with services.sessions.begin() as session:
        owner = await session.scalar(select(Account.id).where(Account.number == "1001"))
        assert owner is not None
        session.add(
            SipDevice(
                account_id=owner,
                username="1000",
                extension="100",
                password_sealed=sealed or seal(services.settings, "1234"),
            )
        )


def user_of(body: bytes) -> str | None:
    user = parse_document(body).find("section[@name='directory']/domain/groups/group/users/user")
    return None if user is None else user.get("id")


async def test_recorded_directory_posts_replayed(
    services: Services, world: World, port: int
) -> None:
    """The REGISTER and user_data posts, byte for byte (plus our credentials), get device 1000
    as text/xml."""
    await add_device(services)
    for post in (REGISTER, USER_DATA):
        response = await replay(port, post.to("/freeswitch/directory", RIGHT))
        assert response.status == 200, post.label
        assert response.headers["content-type"] == "text/xml"
        assert user_of(response.body) == "1000"


async def test_wrong_or_missing_credentials_get_401(
    services: Services, world: World, port: int
) -> None:
    """Without the right user and password: 401 with a Basic challenge, no directory data."""
    await add_device(services)
    for authorization in [
        None,
        basic("freeswitch", "wrong"),
        basic("admin", SECRET),
        basic("freeswitch", SECRET + "x"),
        basic("freeswitch", SECRET[:-1]),
        "Bearer " + SECRET,
        "Basic !!!not-base64",
    ]:
        response = await replay(port, REGISTER.to("/freeswitch/directory", authorization))
        assert response.status == 401, authorization
        assert response.headers["www-authenticate"].startswith("Basic realm=")
        assert b"a1-hash" not in response.body


async def test_without_secret_loopback_only(services: Services, world: World) -> None:
    """C2_FREESWITCH_SECRET unset: the exact recorded bytes from loopback are served (IPv4,
    IPv6, mapped); any other client gets 403."""
    await add_device(services)
    open_services = Services(
        settings=services.settings.model_copy(update={"freeswitch_secret": None}),
        engine=services.engine,
    )
    app = build_http_app(open_services, None, CollectorRegistry())
    async with serve_asgi(app) as base:
        response = await replay(int(base.rsplit(":", 1)[1]), REGISTER.to("/freeswitch/directory"))
    assert response.status == 200 and user_of(response.body) == "1000"
    for client, status in [
        ("192.0.2.7", 403),
        ("10.0.0.5", 403),
        ("::1", 200),
        ("::ffff:127.0.0.1", 200),
        ("127.0.0.9", 200),
    ]:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://c2bot") as http:
            reply = await http.post("/freeswitch/directory", content=REGISTER.body)
        assert reply.status_code == status, client
        if status == 403:
            assert "C2_FREESWITCH_SECRET" in reply.text


async def test_recorded_configuration_posts_replayed(
    services: Services, world: World, port: int
) -> None:
    """All 20 recorded configuration posts: conference.conf is ours, the rest "not found"."""
    served = {}
    for post in CONFIGURATION:
        response = await replay(port, post.to("/freeswitch/configuration", RIGHT))
        assert response.status == 200 and response.headers["content-type"] == "text/xml"
        served[post.label] = parse_document(response.body)
    conference = served.pop("startup-5")
    profile = conference.find("section/configuration[@name='conference.conf']/profiles/profile")
    assert profile is not None and profile.get("name") == "default"
    assert len(served) == 19 and all(is_not_found(doc) for doc in served.values())


async def test_recorded_dialplan_posts_replayed(
    services: Services, world: World, port: int
) -> None:
    """The recorded dialplan posts (numbers we do not route, context default): "not found"."""
    for post in DIALPLAN:
        response = await replay(port, post.to("/freeswitch/dialplan", RIGHT))
        assert response.status == 200 and response.headers["content-type"] == "text/xml"
        assert is_not_found(parse_document(response.body)), post.label


async def test_failing_lookup_is_not_found_logged_and_counted(
    services: Services,
    world: World,
    port: int,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A password sealed under another C2_SECRET_KEY cannot be read: FreeSWITCH still gets a
    200 "not found" (and falls back), the failure is logged and counted."""
    other_key = services.settings.model_copy(update={"secret_key": SecretStr("another-key")})
    await add_device(services, sealed=seal(other_key, "1234"))
    with caplog.at_level(logging.ERROR, logger="c2bot.bot.freeswitch_http"):
        response = await replay(port, REGISTER.to("/freeswitch/directory", RIGHT))
    assert response.status == 200 and is_not_found(parse_document(response.body))
    assert "FreeSWITCH directory lookup failed (key_value='127.0.0.1', user='1000'" in caplog.text
    assert "SecretUnreadable" in caplog.text
    errors = registry.get_sample_value(
        "c2bot_freeswitch_requests_total", {"section": "directory", "answer": "error"}
    )
    assert errors == 1.0
    async with httpx.AsyncClient() as http:
        metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert 'c2bot_freeswitch_requests_total{answer="error",section="directory"} 1.0' in metrics.text


async def test_wrong_endpoint_or_method(services: Services, world: World, port: int) -> None:
    """A directory post sent to the configuration endpoint is "not found"; GET is refused."""
    await add_device(services)
    response = await replay(port, REGISTER.to("/freeswitch/configuration", RIGHT))
    assert response.status == 200 and is_not_found(parse_document(response.body))
    async with httpx.AsyncClient() as http:
        reply = await http.get(
            f"http://127.0.0.1:{port}/freeswitch/directory", headers={"authorization": RIGHT}
        )
    assert reply.status_code == 405


def test_shipped_xml_curl_conf_matches_the_endpoints(registry: CollectorRegistry) -> None:
    """config/freeswitch/xml_curl.conf.xml binds each section to its endpoint, logs in as
    freeswitch with basic auth and keeps a timeout."""
    conf = Path(__file__).parents[2] / "config" / "freeswitch" / "xml_curl.conf.xml"
    services = Services(test_settings("sqlite+aiosqlite://"), create_engine("sqlite+aiosqlite://"))
    endpoints = FreeSwitchEndpoints(services, registry)
    paths = {route.path for route in endpoints.routes()}
    bound = {}
    for binding in parse_document(conf.read_bytes()).iterfind("bindings/binding"):
        params = {p.get("name"): p for p in binding.iterfind("param")}
        url = params["gateway-url"]
        section = url.get("bindings", "")
        bound[section] = urlsplit(url.get("value", "")).path
        assert params["gateway-credentials"].get("value", "").startswith("freeswitch:")
        assert params["auth-scheme"].get("value") == "basic"
        assert params["disable-100-continue"].get("value") == "true"
        assert 0 < int(params["timeout"].get("value", "0")) <= 5
    assert bound == {s: f"/freeswitch/{s}" for s in ("dialplan", "directory", "configuration")}
    assert set(bound.values()) == paths


def test_replayed_bytes_are_the_recording() -> None:
    """Only the request line's path (and our Authorization line) differ from the recording."""
    sent = REGISTER.to("/freeswitch/directory", RIGHT)
    assert sent.startswith(b"POST /freeswitch/directory HTTP/1.1\r\nAuthorization: Basic ")
    recorded_rest = REGISTER.raw.split(b"\r\n", 1)[1]
    assert sent.endswith(recorded_rest) and recorded_rest.endswith(REGISTER.body)
    assert Post("x", REGISTER.raw).to("/freeswitch/directory") == REGISTER.raw.replace(
        b"/xml/directory", b"/freeswitch/directory", 1
    )


def test_form_params_read_as_parse_qsl_would() -> None:
    """The lazy form decoding gives what `dict(parse_qsl(...))` gives, for every recorded post."""
    from urllib.parse import parse_qsl

    from c2bot.bot.freeswitch_http import FormParams

    posts = [
        *recorded_posts("xml_curl_dialplan.txt"),
        *recorded_posts("xml_curl_directory.txt"),
        *recorded_posts("xml_curl_configuration.txt"),
    ]
    for post in posts:
        expected = dict(parse_qsl(post.body.decode("latin-1"), keep_blank_values=True))
        assert dict(FormParams(post.body)) == expected, post.label
    tricky = FormParams(b"a=1&a=2&b=x+y%2Bz&c=&%41%42=%E2%82%AC&&d")
    assert dict(tricky) == {"a": "2", "b": "x y+z", "c": "", "AB": "\u20ac", "d": ""}
    assert "AB" in tricky and "zz" not in tricky and len(tricky) == 5
