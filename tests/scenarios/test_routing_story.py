"""The routing story end to end: people change routing by message, FreeSWITCH asks over HTTP
(the recorded mod_xml_curl post, with our number in it) and the very next call follows.

No step here calls a handler directly: words go through the shared grammar as they do from
Slack, the shell and email, and the switch's view comes from the HTTP endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import httpx
import pytest
from prometheus_client import CollectorRegistry

from c2bot.bot.commands import run_line
from c2bot.bot.http import build_http_app
from c2bot.bot.services import Services
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Refusal
from c2bot.storage.models import Channel
from tests.conftest import World
from tests.support.http import serve_asgi
from tests.support.xmlcurl import parse_document, recorded_posts

TUESDAY_10 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam


@pytest.fixture
async def switch_url(services: Services) -> AsyncIterator[str]:
    async with serve_asgi(build_http_app(services, None, CollectorRegistry())) as base:
        yield base


async def say(services: Services, actor: Actor, line: str) -> str:
    outcome = await run_line(services.context(actor, Channel.SLACK), line)
    reply = outcome.reply
    return "\n".join([reply.title, reply.text, *(f"{k}: {v}" for k, v in reply.fields)])


async def call(base: str, number: str, context: str = "public") -> Element:
    """The recorded dialplan post, as FreeSWITCH would send it for a call to `number`."""
    params = recorded_posts("xml_curl_dialplan.txt")[-1].params
    for key in ("Caller-Destination-Number", "Hunt-Destination-Number"):
        params[key] = number
    for key in ("Caller-Context", "Hunt-Context"):
        params[key] = context
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base}/freeswitch/dialplan", data=params)
    assert response.status_code == 200
    return parse_document(response.content)


def actions(document: Element) -> list[tuple[str, str]]:
    return [(a.get("application", ""), a.get("data", "")) for a in document.iter("action")]


def bridged(document: Element) -> str:
    found = [data for app, data in actions(document) if app == "bridge"]
    assert found, actions(document)
    return found[0]


async def test_a_number_routed_by_message_follows_each_change_on_the_next_call(
    services: Services, world: World, switch_url: str
) -> None:
    services.clock = lambda: TUESDAY_10
    jan = world.customer
    assert "added" in await say(services, world.staff, "c2 did add +31201234567 account:1001")
    await say(services, jan, "c2 device add 100")
    await say(services, jan, "c2 device add 101")
    await say(services, jan, "c2 ringgroup add sales members:1001-100,1001-101")
    await say(services, jan, "route did set +31201234567 ringgroup sales")

    legs = bridged(await call(switch_url, "31201234567"))
    assert "user/1001-100@1001.sip.localhost" in legs
    assert "user/1001-101@1001.sip.localhost" in legs

    # Office hours in front of the ring group; outside them, the mobile.
    await say(services, jan, 'c2 timecondition add office failover:"pstn 0612345678"')
    await say(
        services,
        jan,
        "c2 timecondition row office add 09:00-17:00 days:mon-fri priority:1 ringgroup sales",
    )
    await say(services, jan, "route did set +31201234567 timecondition office")
    assert "user/1001-100" in bridged(await call(switch_url, "+31201234567"))

    # "We're closed today": the next call goes to the mobile, and the test explains why.
    await say(services, jan, "route tc force office closed")
    assert bridged(await call(switch_url, "0201234567")).endswith("+31612345678")
    explained = await say(services, jan, "route test +31201234567")
    assert "office" in explained and "closed" in explained and "+31612345678" in explained

    # Undo lifts the override: office hours again.
    await say(services, jan, "route undo")
    assert "user/1001-100" in bridged(await call(switch_url, "31201234567"))

    # Another customer cannot touch it; a number nobody routes is "not found".
    with pytest.raises(Refusal):
        await say(services, world.other, "route did set +31201234567 pstn 0612345678")
    unknown = await call(switch_url, "31209999999")
    assert unknown.find("section/result") is not None
