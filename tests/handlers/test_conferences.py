"""Conferences and their profiles: mod_conference parameters checked against the known list,
sounds as recordings or switch streams, caller controls with mod_conference's action names."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import conferences, routing_changes
from c2bot.handlers.conferences import ConferenceChanges
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import Channel, Conference, ConferenceProfile, Did
from c2bot.switch import configuration
from tests.conftest import World
from tests.handlers.test_ivrs import pbx


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def profile(services: Services, name: str = "quiet") -> ConferenceProfile:
    async with services.sessions() as session:
        found = await session.scalar(
            select(ConferenceProfile).where(ConferenceProfile.name == name)
        )
        assert found is not None
        return found


async def test_a_profile_with_parameters_and_controls(services: Services, world: World) -> None:
    """Known parameters are stored as the switch reads them; controls start as mod_conference's
    defaults and change by digit."""
    await pbx(services)
    c = ctx(services, world.customer)
    params = {
        "enter-sound": "welcome",
        "exit-sound": "tone_stream://%(500,0,300,200,100,50,25)",
        "moh-sound": "local_stream://moh",
        "max-members": "20",
        "rate": "16000",
        "verbose-events": "yes",
        "member-flags": "endconf, mute-detect",
        "caller-id-number": "+31201234567",
    }
    added = await conferences.add_profile(c, "quiet", None, params)
    assert added.title == "Conference profile quiet added to account 1001."
    stored = await profile(services)
    assert stored.params == params | {
        "verbose-events": "true",
        "member-flags": "endconf|mute-detect",
    }
    assert [(k.digits, k.action) for k in stored.controls][:3] == [
        ("#", "hangup"),
        ("*", "deaf mute"),
        ("0", "mute"),
    ]
    assert len(stored.controls) == 12
    answer = await conferences.set_control(c, "quiet", None, "0", "energy down")
    assert (
        answer.title
        == "Conference profile quiet: pressing 0 now does energy dn (lower the noise gate)."
    )
    await conferences.set_control(c, "quiet", None, "*9", "Volume-Listen-Zero")
    await conferences.remove_control(c, "quiet", None, "#")
    await conferences.edit_profile(c, "quiet", None, {"moh-sound": "none", "energy-level": "300"})
    stored = await profile(services)
    controls = {k.digits: k.action for k in stored.controls}
    assert controls["0"] == "energy dn" and controls["*9"] == "vol listen zero"
    assert "#" not in controls
    assert "moh-sound" not in stored.params and stored.params["energy-level"] == "300"
    shown = await conferences.show_profile(c, "quiet")
    assert dict(shown.fields)["max-members"] == "20"
    assert (
        shown.table is not None and ("0", "energy dn", "lower the noise gate") in shown.table.rows
    )


async def test_profile_values_that_do_not_fit(services: Services, world: World) -> None:
    """Unknown parameters, sounds that are neither recordings nor streams, numbers out of
    range, unknown flags and unknown control actions are refused in words."""
    await pbx(services)
    c = ctx(services, world.customer)
    cases = [
        ({"sound-prefix": "/etc"}, "'sound-prefix' is not a conference profile parameter"),
        ({"enter-sound": "/etc/passwd"}, "Account 1001 has no recording '/etc/passwd'"),
        ({"enter-sound": "tone_stream://${evil}"}, "has no recording 'tone_stream://${evil}'"),
        ({"max-members": "1"}, "max-members must be a whole number from 2 to 1000"),
        ({"rate": "44100"}, "rate takes one of 8000, 16000, 32000, 48000"),
        ({"member-flags": "mute|wizard"}, "member-flags: wizard is not a flag we serve"),
        ({"caller-id-name": 'a "quoted" name'}, "caller-id-name must be at most 80 printable"),
    ]
    for params, words in cases:
        with pytest.raises(Invalid) as refused:
            await conferences.add_profile(c, "quiet", None, params)
        assert words in refused.value.message, refused.value.message
    await conferences.add_profile(c, "quiet", None, {})
    with pytest.raises(Invalid, match="'dance' is not a conference control; use one of: mute"):
        await conferences.set_control(c, "quiet", None, "5", "dance")
    with pytest.raises(Invalid, match="Control digits are 1 to 8 of 0-9"):
        await conferences.set_control(c, "quiet", None, "A", "mute")
    with pytest.raises(NotFound, match="has no control 55"):
        await conferences.remove_control(c, "quiet", None, "55")


async def test_conferences_name_their_greeting_profile_and_pin(
    services: Services, world: World
) -> None:
    """A conference takes a recording, one of the account's profiles (or default) and a PIN;
    a profile in use and a conference a DID uses are not removed; undo reverts."""
    account_id = await pbx(services)
    c = ctx(services, world.customer)
    await conferences.add_profile(c, "quiet", None, {})
    added = await conferences.add_conference(
        c, "team", None, ConferenceChanges(greeting="welcome", profile="quiet", pin="4321")
    )
    assert dict(added.fields) == {
        "Account": "1001",
        "Status": "on",
        "Greeting": "welcome",
        "Profile": "quiet",
        "PIN": "4321",
        "Reached from": "nothing yet",
    }
    cases = [
        (ConferenceChanges(profile="loud"), "profile", "has no conference profile 'loud'"),
        (ConferenceChanges(pin="12"), "pin", "A conference PIN is 3 to 16 digits"),
        (ConferenceChanges(greeting="nope"), "greeting", "has no recording 'nope'"),
    ]
    for changes, field, words in cases:
        with pytest.raises(Invalid) as refused:
            await conferences.edit_conference(c, "team", None, changes)
        assert list(refused.value.fields) == [field] and words in refused.value.message
    with pytest.raises(Invalid, match="used by conference\\(s\\) team"):
        await conferences.remove_profile(c, "quiet", None)
    await conferences.edit_conference(
        c, "team", None, ConferenceChanges(profile="default", pin="none")
    )
    async with services.sessions() as session:
        team = await session.scalar(select(Conference))
    assert team is not None and (team.profile, team.pin) == ("default", "")
    await routing_changes.undo_last(c)
    async with services.sessions() as session:
        team = await session.scalar(select(Conference))
    assert team is not None and (team.profile, team.pin) == ("quiet", "4321")
    async with services.sessions.begin() as session:
        session.add(
            Did(
                number="+31201234500",
                account_id=account_id,
                forward_type="conference",
                destination="team",
            )
        )
    with pytest.raises(Invalid, match="is in use: DID \\+31201234500"):
        await conferences.remove_conference(c, "team", None)
    listing = await conferences.list_conferences(ctx(services, world.staff), "1001")
    assert listing.table is not None
    assert listing.table.rows == (("1001", "team", "on", "quiet", "yes", "welcome"),)
    with pytest.raises(NotAllowed):
        await conferences.list_conferences(ctx(services, world.other), "1001")
    with pytest.raises(NotFound):
        await conferences.show_conference(ctx(services, world.other), "team")


def test_what_we_accept_is_what_the_switch_is_served() -> None:
    """Every profile parameter and control action accepted here reaches conference.conf."""
    assert set(conferences.PARAMS) <= configuration.PROFILE_PARAMS
    assert all(configuration.control_action(action) == action for action in conferences.ACTIONS)
    assert dict(conferences.DEFAULT_CONTROLS) == dict(configuration.DEFAULT_CONTROLS)
