"""Time conditions by message: rows typed as words, checked by the switch's own rules; where a
call goes now; the override shown with who and since when; loops refused with the path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import routing_changes, tcs
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.tcs import TcChanges
from c2bot.storage.models import Channel, Did, Ivr, TimeCondition
from tests.conftest import World
from tests.handlers.test_ivrs import pbx

MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam
SATURDAY_10 = datetime(2026, 3, 7, 9, 0, tzinfo=UTC)
KINGS_DAY_10 = datetime(2026, 4, 27, 8, 0, tzinfo=UTC)  # a Monday, 10:00 CEST


def ctx(services: Services, actor: Actor, at: datetime = MONDAY_10) -> Context:
    return replace(services.context(actor, Channel.SHELL), clock=lambda: at)


async def office(services: Services, actor: Actor) -> None:
    """Time condition office: weekdays to sales, King's Day closed, failover voicemail."""
    await pbx(services)
    c = ctx(services, actor)
    await tcs.add_tc(c, "office", None, TcChanges(failover="voicemail 1001-100"))
    await tcs.add_row(c, "office", None, "09:00-17:30 days:mon-fri priority:1 ringgroup sales")
    await tcs.add_row(c, "office", None, "holiday country:NL priority:0 playback bye")


async def test_rows_are_checked_numbered_and_followed(services: Services, world: World) -> None:
    """Rows are stored normalised, numbered by priority; the call goes where the clock says."""
    await office(services, world.customer)
    async with services.sessions() as session:
        tc = await session.scalar(select(TimeCondition))
        assert tc is not None
        rows = [tcs.row_words(r) for r in tcs.ordered_rows(tc)]
    assert rows == [
        "holiday country:NL priority:0 playback bye",
        "09:00-17:30 days:mon-fri priority:1 ringgroup sales",
    ]
    now = {}
    for label, at in (("mon", MONDAY_10), ("sat", SATURDAY_10), ("kings", KINGS_DAY_10)):
        shown = await tcs.show_tc(ctx(services, world.customer, at), "office")
        now[label] = dict(shown.fields)["Now"]
    assert now == {
        "mon": "open via row 2 -> ring group sales",
        "sat": "closed -> failover voicemail 1001-100",
        "kings": "open via row 1 -> playback bye",
    }
    shown = await tcs.show_tc(ctx(services, world.customer), "office")
    assert shown.table is not None
    assert shown.table.rows == (
        ("1", "holidays NL", "0", "playback bye"),
        ("2", "mon-fri 09:00-17:30", "1", "ring group sales"),
    )
    removed = await tcs.remove_row(ctx(services, world.customer), "office", None, "1")
    assert (
        removed.title
        == "Time condition office: row 1 removed (holidays NL, priority 0 -> playback bye)."
    )
    with pytest.raises(NotFound, match="has no row '5' \\(it has rows 1 to 1\\)"):
        await tcs.remove_row(ctx(services, world.customer), "office", None, "5")


async def test_row_words_that_do_not_fit(services: Services, world: World) -> None:
    """The switch's rules refuse bad times, days and countries; a row needs a destination."""
    await office(services, world.customer)
    c = ctx(services, world.customer)
    cases = [
        ("25:00-26:00 ringgroup sales", "'25:00' is not a time of day: hours go 00-23"),
        ("09:00-17:00 days:mon-fry ringgroup sales", "'fry' is not one of mon, tue"),
        ("holiday country:XX hangup", "There is no holiday calendar for XX"),
        ("09:00-17:00 days:mon-fri", "A row ends with where calls go"),
        ("09:00-17:00 ringgroup nosuch", "Account 1001 has no ring group 'nosuch'"),
        ("09:00-17:00 priority:500 hangup", "priority must be a whole number from 0 to 99"),
    ]
    for words, message in cases:
        with pytest.raises(Invalid) as refused:
            await tcs.add_row(c, "office", None, words)
        assert message in refused.value.message, (words, refused.value.message)


async def test_loops_are_refused_with_the_path(services: Services, world: World) -> None:
    """A row or failover that leads back to the condition, directly or via an IVR failover."""
    account_id = await pbx(services)
    c = ctx(services, world.customer)
    with pytest.raises(Invalid, match="time condition office -> time condition office"):
        await tcs.add_tc(c, "office", None, TcChanges(failover="timecondition office"))
    await tcs.add_tc(c, "office", None, TcChanges())
    async with services.sessions.begin() as session:
        session.add(
            Ivr(
                account_id=account_id,
                name="main",
                failover_type="timecondition",
                failover_value="office",
            )
        )
    with pytest.raises(Invalid) as refused:
        await tcs.add_row(c, "office", None, "09:00-17:00 ivr main")
    assert (
        "That would make a loop: time condition office -> IVR main -> time condition office."
        in (refused.value.message)
    )
    with pytest.raises(Invalid) as refused:
        await tcs.edit_tc(c, "office", None, TcChanges(rows="09:00-17:00 hangup\nivr main"))
    assert refused.value.fields == {"rows": refused.value.fields["rows"]}
    assert refused.value.message.startswith("Rows, line 2 (ivr main): That would make a loop")


async def test_force_shows_everywhere_until_lifted(services: Services, world: World) -> None:
    """Forced closed: list and show say so with who and since when, the DID pointing at it is
    named, calls go to the failover; auto lifts it; undo puts the override back."""
    await office(services, world.customer)
    account_id = await pbx_account(services)
    async with services.sessions.begin() as session:
        session.add(
            Did(
                number="+31201234567",
                account_id=account_id,
                forward_type="timecondition",
                destination="office",
            )
        )
    c = ctx(services, world.customer)
    forced = await tcs.force_tc(c, "office", None, "closed")
    assert forced.title == (
        "Time condition office is forced closed until `/route tc force office auto` lifts it."
    )
    note = "forced closed by Jan Jansen since 2026-03-02 10:00 (Europe/Amsterdam)"
    shown = dict(forced.fields)
    assert (shown["Override"], shown["Now"]) == (note, "closed -> failover voicemail 1001-100")
    assert shown["Numbers"] == "+31201234567"
    listing = await tcs.list_tcs(ctx(services, world.reseller))
    assert listing.table is not None
    assert listing.table.rows == (
        ("1001", "office", "closed -> failover voicemail 1001-100", note),
    )
    async with services.sessions() as session:
        assert await tcs.override_of(session, account_id, "office") == note
    lifted = await tcs.force_tc(c, "office", None, "auto")
    assert dict(lifted.fields)["Override"] == "none (follows its clock)"
    assert dict(lifted.fields)["Now"] == "open via row 2 -> ring group sales"
    undone = await routing_changes.undo_last(c)
    assert undone.title == "Undone: time condition office back to its clock"
    assert dict((await tcs.show_tc(c, "office")).fields)["Override"] == note
    with pytest.raises(Invalid, match="force takes auto, open, closed"):
        await tcs.force_tc(c, "office", None, "ajar")


async def test_in_use_and_other_accounts(services: Services, world: World) -> None:
    """A condition a DID uses stays; another account's condition is not found."""
    await office(services, world.customer)
    with pytest.raises(NotFound):
        await tcs.show_tc(ctx(services, world.other), "office")
    account_id = await pbx_account(services)
    async with services.sessions.begin() as session:
        session.add(
            Did(
                number="+31201234599",
                account_id=account_id,
                forward_type="timecondition",
                destination="office",
            )
        )
    with pytest.raises(Invalid, match="is in use: DID \\+31201234599"):
        await tcs.remove_tc(ctx(services, world.customer), "office", None)


async def pbx_account(services: Services) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(TimeCondition.account_id))
        assert found is not None
        return found
