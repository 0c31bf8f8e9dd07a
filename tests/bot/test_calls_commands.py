"""`calls` through the shared grammar and the shell: help, list, hangup, barge, refusals."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.grammar import UsageError
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.bot.shell import run_shell, shell_context
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import NotAllowed, Refusal
from c2bot.storage.models import Account, Channel, SipDevice
from tests.conftest import World
from tests.support.eslpeer import EslPeer, connected_pool, running_peer


@pytest.fixture
async def peer(services: Services) -> AsyncIterator[EslPeer]:
    async with running_peer() as running, connected_pool(running) as pool:
        services.switch = pool
        yield running
        services.switch = None


async def say(services: Services, actor: Actor, line: str) -> str:
    """The text answer to one command line, as the shell and email show it."""
    return reply_text((await run_line(services.context(actor, Channel.SHELL), line)).reply)


async def test_help_names_every_verb(services: Services, world: World) -> None:
    """`calls help` shows the three verbs with their words; the overview names the command."""
    text = await say(services, world.customer, "calls help")
    for usage in ("calls list [account:", "calls hangup UUID", "calls barge UUID EXTENSION"):
        assert usage in text, usage
    assert "1 speaks to the caller, 2 to the callee, 3 to both" in text
    assert "calls: live calls" in await say(services, world.customer, "help")


def test_only_list_is_read_only() -> None:
    """Email commands need confirming when they change something: hangup and barge do."""
    assert not changes_something("calls list")
    assert not changes_something("calls help")
    assert changes_something("calls hangup e5a1c0de-0000-4000-8000-00000000e51a")
    assert changes_something("calls barge e5a1c0de-0000-4000-8000-00000000e51a 200")


async def test_list_and_hangup_by_line(services: Services, world: World, peer: EslPeer) -> None:
    """A customer lists its call and may not end it; its reseller ends it by the shown uuid."""
    acme = peer.place_call("1001-100", "+31201234567", accountcode="1001")
    peer.place_call("2001-100", "+3225551234", accountcode="2001")
    listed = await say(services, world.customer, "calls list")
    assert "1 live call(s)" in listed
    assert acme.uuid in listed and "+31201234567" in listed and "2001" not in listed
    for column in ("Caller", "Destination", "Duration", "State", "Codecs", "Account", "UUID"):
        assert column in listed
    with pytest.raises(NotAllowed):
        await run_line(services.context(world.customer, Channel.SHELL), f"calls hangup {acme.uuid}")
    answer = await say(services, world.reseller, f"calls hangup {acme.uuid}")
    assert answer == f"Call {acme.uuid} (1001-100 to +31201234567) is hung up."
    assert acme.uuid not in peer.channels


async def test_barge_by_line(services: Services, world: World, peer: EslPeer) -> None:
    """`calls barge UUID EXTENSION` rings the asker's device and explains the keys; without
    the extension it explains the words instead."""
    async with services.sessions.begin() as session:
        r100 = await session.scalar(select(Account.id).where(Account.number == "R100"))
        assert r100 is not None
        session.add(
            SipDevice(account_id=r100, username="R100-200", extension="200", password_sealed="-")
        )
    peer.register("R100-200", "R100.sip.localhost")
    acme = peer.place_call("1001-100", "+31201234567", accountcode="1001")
    answer = await say(services, world.reseller, f"calls barge {acme.uuid} 200")
    assert "Your device R100-200 is listening in" in answer
    assert "1 to speak to the caller (A leg), 2 to speak to the callee (B leg)" in answer
    assert peer.originates[-1].argument == acme.other_leg
    with pytest.raises(UsageError, match="needs extension"):
        await say(services, world.reseller, f"calls barge {acme.uuid}")


async def test_shell_says_when_the_switch_is_not_reachable(
    services: Services, world: World
) -> None:
    """The shell without a switch answers each calls line with the reason, exit status 1."""
    out = io.StringIO()
    ctx = shell_context(services, world.staff)
    status = await run_shell(ctx, ["calls list", "calls hangup abc"], out, interactive=False)
    assert status == 1
    assert out.getvalue().count("The switch is not reachable from this c2bot") == 2


async def test_shell_lists_calls(services: Services, world: World, peer: EslPeer) -> None:
    """The shell operator (admin) sees every call, the same table as Slack and email."""
    stray = peer.place_call("9999", "hold")
    out = io.StringIO()
    status = await run_shell(shell_context(services, world.admin), ["calls list"], out, False)
    assert status == 0
    assert stray.uuid in out.getvalue() and "hold" in out.getvalue()


async def test_refusals_are_sentences(services: Services, world: World, peer: EslPeer) -> None:
    """A refusal from the domain reaches the line's asker as one readable sentence."""
    with pytest.raises(Refusal) as refused:
        await run_line(
            services.context(world.reseller2, Channel.SHELL),
            "calls hangup 00000000-0000-0000-0000-000000000000",
        )
    assert refused.value.message.startswith("There is no live call 00000000-")
