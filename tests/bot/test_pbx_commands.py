"""`/c2 ivr|timecondition|conference|confprofile|recording` and `/route tc` through the shared
grammar, as a customer, a reseller and staff: other accounts, loops, overrides, undo."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.pbxcommands import RecordingPlayed
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from c2bot.handlers import recordings
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import Channel, ConferenceProfile, Did, Ivr, TimeCondition
from tests.conftest import World, test_settings
from tests.handlers.test_ivrs import pbx
from tests.handlers.test_recordings import wav_bytes

MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return test_settings(database_url, C2_RECORDINGS_DIR=str(tmp_path / "recordings"))


def ctx(services: Services, actor: Actor) -> Context:
    return replace(services.context(actor, Channel.SHELL), clock=lambda: MONDAY_10)


async def say(services: Services, actor: Actor, line: str) -> str:
    """The text answer to one command line, as the shell and email show it."""
    return " ".join(reply_text((await run_line(ctx(services, actor), line)).reply).split())


async def refused(services: Services, actor: Actor, line: str) -> Refusal:
    with pytest.raises(Refusal) as caught:
        await run_line(ctx(services, actor), line)
    return caught.value


async def test_help_names_every_object_and_verb(services: Services, world: World) -> None:
    """Each command's help lists its verbs in the grammar's words; the overview names them."""
    expected = {
        "c2 ivr help": ["c2 ivr option NAME SET|REMOVE DIGIT [TYPE] [DESTINATION]", "direct-dial:"],
        "c2 timecondition help": ["c2 timecondition row NAME ADD|REMOVE [account:", "ROW..."],
        "c2 confprofile help": ["enter-sound:", "max-members:", "CONTROL..."],
        "c2 recording help": ["c2 recording play NAME", "c2 recording add NAME"],
        "route tc help": ["route tc force NAME FORCE", "open, closed or auto"],
    }
    for line, words in expected.items():
        answer = await say(services, world.customer, line)
        for word in words:
            assert word in answer, (line, word)
    overview = await say(services, world.customer, "help")
    for name in ("c2 ivr:", "c2 timecondition:", "c2 conference:", "c2 confprofile:", "route tc:"):
        assert name in overview


async def test_a_phone_system_by_message(services: Services, world: World) -> None:
    """A customer builds a menu, a time condition and a conference in words."""
    await pbx(services)
    customer = world.customer
    for line in (
        'c2 ivr add main greeting:welcome timeout:8 failover:"voicemail 100"',
        "c2 ivr add support",
        "c2 ivr option main set 1 ringgroup sales",
        "c2 ivr option main set 2 ivr support",
        "c2 ivr option support set 0 ivr main",
        'c2 timecondition add office failover:"voicemail 1001-100"',
        "c2 timecondition row office add 09:00-17:30 days:mon-fri priority:1 ivr main",
        "c2 timecondition row office add holiday country:NL priority:0 playback bye",
        "c2 confprofile add quiet enter-sound:welcome max-members:20",
        "c2 confprofile control quiet set 3 vol talk up",
        "c2 conference add team profile:quiet pin:4321",
    ):
        await say(services, customer, line)
    shown = await say(services, customer, "c2 ivr show main")
    assert "Failover voicemail 1001-100" in shown and "1 ring group sales" in shown
    assert "Reached from IVR support (digit 0), time condition office (row 2 (priority 1))" in shown
    tc = await say(services, customer, "c2 timecondition show office")
    assert "Now open via row 2 -> IVR main" in tc
    profile = await say(services, customer, "c2 confprofile show quiet")
    assert "3 vol talk up talk louder" in profile and "enter-sound welcome" in profile
    removed = await say(services, customer, "c2 ivr option main remove 2")
    assert removed == "IVR main: option 2 removed; pressing 2 is now invalid."


async def test_other_accounts_and_unknown_names(services: Services, world: World) -> None:
    """A customer cannot reach another account; a reseller reaches its customers only; staff
    name the account; unknown recordings and names are refused in words."""
    await pbx(services)
    await say(services, world.customer, "c2 ivr add main")
    assert isinstance(
        await refused(services, world.other, "c2 ivr show main account:1001"), NotAllowed
    )
    gone = await refused(services, world.other, "c2 ivr show main")
    assert isinstance(gone, NotFound) and gone.message.startswith("There is no IVR 'main'")
    assert "IVR main added to account 1002." in await say(
        services, world.reseller, "c2 ivr add main account:1002"
    )
    assert isinstance(
        await refused(services, world.reseller2, "c2 ivr add x account:1001"), NotAllowed
    )
    several = await refused(services, world.staff, "c2 ivr show main")
    assert several.message == (
        "Several accounts have an IVR 'main' (1001, 1002); add account:NUMBER."
    )
    assert "Account 1002" in await say(services, world.staff, "c2 ivr show main account:1002")
    unknown = await refused(services, world.customer, "c2 ivr edit main greeting:hello")
    assert isinstance(unknown, Invalid) and unknown.message.startswith(
        "Account 1001 has no recording 'hello'; upload one with `/c2 recording add`"
    )
    assert isinstance(
        await refused(services, world.customer, "c2 conference add team greeting:hello"), Invalid
    )


async def test_loops_are_refused_with_the_path(services: Services, world: World) -> None:
    """Through the grammar too, a loop says the path it would take."""
    await pbx(services)
    await say(services, world.customer, "c2 ivr add main")
    await say(services, world.customer, 'c2 timecondition add office failover:"ivr main"')
    menu = await refused(services, world.customer, "c2 ivr option main set 5 ivr main")
    assert "That would make a loop: IVR main -> IVR main." in menu.message
    failover = await refused(
        services, world.customer, 'c2 ivr edit main failover:"timecondition office"'
    )
    assert "IVR main -> time condition office -> IVR main." in failover.message
    row = await refused(
        services, world.customer, "c2 timecondition row office add 08:00-09:00 timecondition office"
    )
    assert "time condition office -> time condition office" in row.message


async def test_force_shows_everywhere_and_undo(services: Services, world: World) -> None:
    """`route tc force` shows in tc list, tc show, c2 timecondition list/show; undo lifts it."""
    await pbx(services)
    customer = world.customer
    await say(services, customer, 'c2 timecondition add office failover:"voicemail 100"')
    await say(services, customer, "c2 timecondition row office add 09:00-17:00 ringgroup sales")
    forced = await say(services, customer, "route tc force office closed")
    assert forced.startswith("Time condition office is forced closed until /route tc force")
    note = "forced closed by Jan Jansen since 2026-03-02 10:00 (Europe/Amsterdam)"
    for line in (
        "route tc list",
        "route tc show office",
        "c2 timecondition list",
        "c2 timecondition show office",
    ):
        answer = await say(services, world.reseller if "list" in line else customer, line)
        assert note in answer, line
        assert "closed -> failover voicemail 1001-100" in answer, line
    undone = await say(services, customer, "route undo")
    assert undone.startswith("Undone: time condition office forced closed")
    assert "Override none (follows its clock)" in await say(
        services, customer, "route tc show office"
    )
    assert "open via row 1 -> ring group sales" in await say(services, customer, "route tc list")


async def test_text_doors_and_forms(services: Services, world: World) -> None:
    """`add` alone and `edit NAME` alone ask for a form (text doors explain the line form);
    recordings are uploaded in Slack; reading verbs change nothing."""
    await pbx(services)
    await say(services, world.customer, "c2 ivr add main timeout:7")
    add = await say(services, world.customer, "c2 ivr add")
    assert add.startswith("Give the details in one line: c2 ivr add NAME [account:N]")
    form = (await run_line(ctx(services, world.customer), "c2 ivr edit main")).result
    assert isinstance(form, OpenForm) and form.form == "ivr_edit"
    assert (form.initial["timeout"], form.initial["account"]) == ("7", "1001")
    upload = await refused(services, world.customer, "c2 recording add hello")
    assert "upload it in Slack with `/c2 recording add`" in upload.message
    assert "dial 1800" in upload.message
    assert not changes_something("c2 recording play welcome")
    assert not changes_something("route tc list")
    assert changes_something("route tc force office open")
    assert changes_something("c2 ivr option main set 1 hangup")


async def test_recording_play_and_remove(services: Services, world: World) -> None:
    """`recording play` carries the file for Slack; removal is refused while a menu uses it."""
    data = wav_bytes(16000)
    c = ctx(services, world.customer)
    await recordings.add_recording(c, recordings.NewRecording("hello", data))
    await say(services, world.customer, "c2 ivr add main greeting:hello")
    played = (await run_line(c, "c2 recording play hello")).result
    assert isinstance(played, RecordingPlayed)
    stored = await asyncio.to_thread(Path(played.path).read_bytes)
    assert stored == data and played.filename == "1001-hello.wav"
    listing = await say(services, world.customer, "c2 recording list")
    assert "1001 hello 0.5 s 16 kHz upload Jan Jansen" in listing
    used = await refused(services, world.customer, "c2 recording remove hello")
    assert used.message.startswith("Recording hello of account 1001 is in use: IVR main")
    await say(services, world.customer, "c2 ivr edit main greeting:none")
    assert await say(services, world.customer, "c2 recording remove hello") == (
        "Recording hello removed from account 1001."
    )
    async with services.sessions() as session:
        assert list(await session.scalars(select(Ivr.greeting))) == [""]
        assert await session.scalar(select(Did.id)) is None
        assert await session.scalar(select(TimeCondition.id)) is None
        assert await session.scalar(select(ConferenceProfile.id)) is None
