"""The dialplan served to FreeSWITCH: every DID type and PBX object, answered from real rows to
the recorded mod_xml_curl post (destination swapped), the XML parsed and its actions checked."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import event, select, update

from c2bot.bot.http import build_http_app
from c2bot.bot.services import Services
from c2bot.handlers import destinations
from c2bot.storage.models import (
    Account,
    CallQueue,
    Conference,
    Did,
    Ivr,
    IvrOption,
    Recording,
    RingGroup,
    RingGroupMember,
    SipDevice,
    TimeCondition,
    TimeConditionRow,
)
from c2bot.switch import dialplan, lookups
from c2bot.switch.targets import transfer_target
from tests.conftest import World
from tests.support.xmlcurl import recorded_posts

NOT_FOUND_POST, SERVED_POST = recorded_posts("xml_curl_dialplan.txt")
MONDAY_MORNING = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Amsterdam
SATURDAY_NIGHT = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
KINGS_DAY = datetime(2026, 4, 27, 9, 30, tzinfo=UTC)
DOMAIN = "1001.sip.localhost"
GATEWAY = "sofia/gateway/pstn/"

# One DID per forwarding type (account 1001), and where each one points.
DIDS = {
    "+31201234501": ("local", "1001-100,1001-101"),
    "+31201234502": ("local", "1001-101|1001-102|1001-103"),
    "+31201234503": ("ip", "pbx.acme.nl:5080"),
    "+31201234504": ("direct-ip", "sip:100@203.0.113.5"),
    "+31201234505": ("pstn", "+31612345678"),
    "+31201234506": ("sip-did", "1001-trunk"),
    "+31201234507": ("ringgroup", "sales"),
    "+31201234508": ("conference", "room"),
    "+31201234509": ("queue", "helpdesk"),
    "+31201234510": ("ivr", "main"),
    "+31201234511": ("timecondition", "office"),
    "+31201234512": ("foip", "fax@acme.nl"),
    "+31201234513": ("other", "sofia/gateway/backup/+31307654321"),
    "+31201234514": ("ringgroup", "support"),
    "+31201234599": ("", ""),
}


@dataclass(frozen=True)
class Served:
    """One dialplan document, read back."""

    context: str
    extension: str
    expression: str
    actions: list[tuple[str, str]]

    @property
    def apps(self) -> list[str]:
        return [app for app, _ in self.actions]

    @property
    def variables(self) -> dict[str, str]:
        pairs = (data.partition("=") for app, data in self.actions if app == "set")
        return {name: value for name, _, value in pairs}

    def data(self, app: str) -> list[str]:
        return [data for name, data in self.actions if name == app]

    def one(self, app: str) -> str:
        found = self.data(app)
        assert len(found) == 1, f"{app}: {found}"
        return found[0]


def under(folder: os.PathLike[str]) -> str:
    """A folder as the switch is told it: absolute."""
    return os.path.abspath(folder)


def legs(bridge: str) -> tuple[str, list[tuple[dict[str, str], str]]]:
    """A bridge string -> its separator and legs as ({leg variables}, endpoint)."""
    separator = "|" if re.search(r"\|(?![^\[]*\])", bridge) else ","
    parts = re.split(r"[,|](?![^\[]*\])", bridge)
    out = []
    for part in parts:
        match = re.fullmatch(r"(?:\[([^\]]*)\])?(.+)", part)
        assert match is not None
        options = dict(o.split("=", 1) for o in match[1].split(",")) if match[1] else {}
        out.append((options, match[2]))
    return separator, out


def post_for(number: str, context: str = "public", **extra: str) -> dict[str, str]:
    """The recorded post, with our number and context in the Caller-* and Hunt-* fields."""
    params = dict(SERVED_POST.params)
    for prefix in ("Caller", "Hunt"):
        params[f"{prefix}-Destination-Number"] = number
        params[f"{prefix}-Context"] = context
    params.update(extra)
    return params


def read(document: bytes) -> Served | None:
    root = fromstring(document)  # noqa: S314 (c2bot's output, not untrusted input)
    if root.find("section[@name='result']/result[@status='not found']") is not None:
        return None
    section = root.find("section[@name='dialplan']")
    assert section is not None
    contexts = section.findall("context")
    assert len(contexts) == 1
    extension = contexts[0].find("extension")
    assert extension is not None
    condition = extension.find("condition")
    assert condition is not None and condition.get("field") == "destination_number"
    actions = [(a.get("application", ""), a.get("data", "")) for a in condition.findall("action")]
    return Served(
        contexts[0].get("name", ""),
        extension.get("name", ""),
        condition.get("expression", ""),
        actions,
    )


async def ask(
    services: Services,
    number: str,
    context: str = "public",
    now: datetime = MONDAY_MORNING,
    **extra: str,
) -> Served | None:
    params = post_for(number, context, **extra)
    return read(await dialplan.answer(services.sessions, services.settings, params, now))


async def served(services: Services, number: str, **kwargs: Any) -> Served:
    found = await ask(services, number, **kwargs)
    assert found is not None, f"{number} was not found"
    return found


async def account_id(services: Services, number: str) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.id).where(Account.number == number))
        assert found is not None
        return found


def device(account: int, ext: str, **fields: Any) -> SipDevice:
    return SipDevice(
        account_id=account,
        username=f"1001-{ext}",
        extension=ext,
        password_sealed="x",
        **fields,
    )


async def pbx(services: Services) -> int:
    """Account 1001's phone system: devices, recordings, groups, queue, IVR, conference,
    time condition, and one DID per forwarding type."""
    acme = await account_id(services, "1001")
    async with services.sessions.begin() as session:
        session.add_all(
            [
                device(acme, "100", voicemail=True),
                device(acme, "101"),
                device(acme, "102", enabled=False),
                device(acme, "103", record_calls=True),
                device(acme, "trunk"),
                Recording(
                    account_id=acme,
                    name="welcome",
                    filename="1001/welcome.wav",
                    sample_rate=8000,
                    duration_ms=2000,
                    size=32044,
                ),
                RingGroup(
                    account_id=acme,
                    name="sales",
                    strategy="simultaneous",
                    announcement="welcome",
                    ringback="nl-ring",
                    cid_name_prefix="Sales: ",
                    cid_number_prefix="0",
                    recording="device",
                    noanswer_type="voicemail",
                    noanswer_value="1001-100",
                    members=[
                        RingGroupMember(position=1, target="1001-100", delay=0, timeout=20),
                        RingGroupMember(position=2, target="1001-103", delay=5, timeout=25),
                        RingGroupMember(position=3, target="1001-102", delay=0, timeout=20),
                        RingGroupMember(position=4, target="+31612345678", delay=10, timeout=30),
                    ],
                ),
                RingGroup(
                    account_id=acme,
                    name="support",
                    strategy="sequence",
                    recording="on",
                    skip_busy=True,
                    ringback="us-ring",
                    members=[
                        RingGroupMember(position=1, target="1001-101", delay=3, timeout=15),
                        RingGroupMember(position=2, target="1001-103", timeout=15),
                    ],
                ),
                CallQueue(
                    account_id=acme,
                    name="helpdesk",
                    timeout=120,
                    failover_type="hangup",
                    failover_value="busy",
                ),
                Conference(account_id=acme, name="room", greeting="welcome", pin="1234"),
                Ivr(
                    account_id=acme,
                    name="main",
                    cid_name_prefix="IVR ",
                    failover_type="ringgroup",
                    failover_value="sales",
                    options=[
                        IvrOption(digit="1", dest_type="ringgroup", dest_value="support"),
                        IvrOption(digit="9", dest_type="pstn", dest_value="+31612345678"),
                    ],
                ),
                TimeCondition(
                    account_id=acme,
                    name="office",
                    failover_type="voicemail",
                    failover_value="1001-100",
                    rows=[
                        TimeConditionRow(
                            priority=10,
                            start_time="09:00",
                            end_time="17:00",
                            weekdays="mon-fri",
                            dest_type="ivr",
                            dest_value="main",
                        ),
                        TimeConditionRow(
                            kind="holiday",
                            holiday_country="NL",
                            priority=1,
                            dest_type="playback",
                            dest_value="welcome",
                        ),
                    ],
                ),
            ]
        )
        for number, (kind, value) in DIDS.items():
            session.add(
                Did(number=number, account_id=acme, forward_type=kind or None, destination=value)
            )
    return acme


@pytest.fixture
async def acme(services: Services, world: World) -> int:
    return await pbx(services)


# --- not found, number forms, the recorded post ------------------------------------------------


async def test_recorded_posts_for_numbers_we_do_not_route_are_not_found(
    services: Services, acme: int
) -> None:
    """The two real posts (tone, 7777 in context default) are not ours: not found."""
    for post in (NOT_FOUND_POST, SERVED_POST):
        answer = await dialplan.answer(
            services.sessions, services.settings, post.params, MONDAY_MORNING
        )
        assert read(answer) is None
    assert await ask(services, "+31209999999") is None
    assert await ask(services, "+31201234501", section="directory") is None


async def test_recorded_post_with_a_did_gets_an_extension_in_its_own_context(
    services: Services, acme: int
) -> None:
    """The real post with the number swapped in: the answer names the request's context and
    matches exactly the number FreeSWITCH gave, and sets the call's account."""
    call = await served(services, "31201234505", context="public")
    assert call.context == "public"
    assert call.expression == "^31201234505$"
    assert re.fullmatch(call.expression, "31201234505")
    assert call.extension == "c2-1001-did-+31201234505"
    assert call.variables["accountcode"] == "1001"
    assert call.variables["c2_account"] == "1001"
    assert call.variables["c2_did"] == "+31201234505"
    assert call.variables["domain_name"] == DOMAIN
    assert call.variables["hangup_after_bridge"] == "true"


async def test_every_form_of_a_did_finds_it(services: Services, acme: int) -> None:
    forms = ["+31201234505", "31201234505", "0031201234505", "0201234505"]
    for form in [*forms, "sip:+31201234505@192.0.2.2"]:
        call = await served(services, form)
        assert call.variables["c2_did"] == "+31201234505"
        assert call.expression == f"^{re.escape(form)}$"
        assert re.fullmatch(call.expression, form)


# --- DID types ------------------------------------------------------------------------------------


async def test_local_devices_ring_together_then_voicemail(services: Services, acme: int) -> None:
    call = await served(services, "+31201234501")
    separator, ringing = legs(call.one("bridge"))
    assert separator == ","
    assert ringing == [
        ({"leg_timeout": "30"}, f"user/1001-100@{DOMAIN}"),
        ({"leg_timeout": "30"}, f"user/1001-101@{DOMAIN}"),
    ]
    assert call.apps[-3:] == ["bridge", "answer", "voicemail"]
    assert call.one("voicemail") == f"default {DOMAIN} 1001-100"
    assert call.variables["continue_on_fail"] == "true"


async def test_local_devices_in_turn_skip_disabled_and_record_by_device(
    services: Services, acme: int
) -> None:
    call = await served(services, "+31201234502")
    separator, ringing = legs(call.one("bridge"))
    assert separator == "|"
    assert [endpoint for _, endpoint in ringing] == [
        f"user/1001-101@{DOMAIN}",
        f"user/1001-103@{DOMAIN}",  # 1001-102 is disabled
    ]
    recording = ringing[1][0]["execute_on_answer"]
    root = under(services.settings.recordings_dir)
    assert recording == f"record_session {root}/1001/calls/${{uuid}}.wav"
    assert "execute_on_answer" not in ringing[0][0]
    assert call.apps[-1] == "bridge" and "continue_on_fail" not in call.variables


async def test_dids_sent_on_elsewhere(services: Services, acme: int) -> None:
    """ip (the DID to a server), direct-ip, pstn (through the gateway), sip-did (the DID kept
    as the number dialled) and other (a raw dial string): one bridge, nothing after it."""
    expected = {
        "+31201234503": "sofia/external/+31201234503@pbx.acme.nl:5080",
        "+31201234504": "sofia/external/100@203.0.113.5",
        "+31201234505": f"{GATEWAY}+31612345678",
        "+31201234513": "sofia/gateway/backup/+31307654321",
    }
    for number, bridge in expected.items():
        call = await served(services, number)
        assert call.one("bridge") == bridge
        assert call.apps[-1] == "bridge" and "continue_on_fail" not in call.variables
    trunk = await served(services, "+31201234506")
    _, ringing = legs(trunk.one("bridge"))
    assert ringing == [
        (
            {"leg_timeout": "30", "sip_invite_to_uri": f"<sip:+31201234506@{DOMAIN}>"},
            f"user/1001-trunk@{DOMAIN}",
        )
    ]


async def test_ring_group_simultaneous_with_everything(services: Services, acme: int) -> None:
    """Prefixes, announcement after answer, ring-back as transfer ring-back, delayed legs,
    a phone number through the gateway, a disabled member skipped, recording by device,
    busy members fail the group, then the no-answer destination."""
    call = await served(services, "+31201234507")
    variables = call.variables
    assert variables["effective_caller_id_name"] == "Sales: ${caller_id_name}"
    assert variables["effective_caller_id_number"] == "0${caller_id_number}"
    assert variables["transfer_ringback"] == "%(1000,4000,425)"
    assert "ringback" not in variables
    assert variables["fail_on_single_reject"] == "USER_BUSY"
    root = under(services.settings.recordings_dir)
    assert call.one("playback") == f"{root}/1001/welcome.wav"
    assert call.apps.index("answer") < call.apps.index("playback") < call.apps.index("bridge")
    separator, ringing = legs(call.one("bridge"))
    assert separator == ","
    assert [endpoint for _, endpoint in ringing] == [
        f"user/1001-100@{DOMAIN}",
        f"user/1001-103@{DOMAIN}",
        f"{GATEWAY}+31612345678",
    ]
    assert ringing[0][0] == {"leg_timeout": "20"}
    assert ringing[1][0]["leg_timeout"] == "25" and ringing[1][0]["leg_delay_start"] == "5"
    assert ringing[1][0]["execute_on_answer"].startswith("record_session ")
    assert ringing[2][0] == {"leg_timeout": "30", "leg_delay_start": "10"}
    assert "record_session" not in call.apps
    after = call.apps[call.apps.index("bridge") + 1 :]
    assert after == ["answer", "voicemail"]
    assert call.variables["continue_on_fail"] == "true"


async def test_ring_group_sequence_records_everything_and_skips_busy(
    services: Services, acme: int
) -> None:
    call = await served(services, "+31201234514")
    separator, ringing = legs(call.one("bridge"))
    assert separator == "|"
    assert ringing == [
        ({"leg_timeout": "15"}, f"user/1001-101@{DOMAIN}"),  # no delay in turn
        ({"leg_timeout": "15"}, f"user/1001-103@{DOMAIN}"),  # the group records, not the leg
    ]
    assert call.variables["ringback"] == "%(2000,4000,440,480)"
    assert call.variables["media_bug_answer_req"] == "true"
    assert call.one("record_session").endswith("/1001/calls/${uuid}.wav")
    assert "fail_on_single_reject" not in call.variables
    assert call.apps[-1] == "bridge"  # no no-answer destination: the bridge's cause ends it


async def test_conference_greets_and_joins_with_pin(services: Services, acme: int) -> None:
    call = await served(services, "+31201234508")
    assert call.apps[-3:] == ["answer", "playback", "conference"]
    assert call.one("conference") == "c2-1001-room@c2-1001-default+1234"


async def test_queue_then_failover(services: Services, acme: int) -> None:
    call = await served(services, "+31201234509")
    assert call.apps[-3:] == ["answer", "callcenter", "hangup"]
    assert call.one("callcenter") == "c2-1001-helpdesk@default"
    assert call.one("hangup") == "USER_BUSY"


async def test_ivr_then_failover_inline(services: Services, acme: int) -> None:
    call = await served(services, "+31201234510")
    assert call.one("ivr") == "c2-1001-main"
    assert call.variables["effective_caller_id_name"] == "Sales: ${caller_id_name}"
    names = [data for data in call.data("set") if data.startswith("effective_caller_id_name=")]
    assert names == [
        "effective_caller_id_name=IVR ${caller_id_name}",
        "effective_caller_id_name=Sales: ${caller_id_name}",
    ]
    ivr_at = call.apps.index("ivr")
    assert call.apps.index("bridge") > ivr_at  # the failover: ring group sales
    assert call.variables["continue_on_fail"] == "true"


async def test_time_condition_follows_the_matching_row(services: Services, acme: int) -> None:
    office = await served(services, "+31201234511", now=MONDAY_MORNING)
    assert office.one("ivr") == "c2-1001-main"
    night = await served(services, "+31201234511", now=SATURDAY_NIGHT)
    assert night.apps[-2:] == ["answer", "voicemail"] and "ivr" not in night.apps
    holiday = await served(services, "+31201234511", now=KINGS_DAY)
    assert holiday.apps[-3:] == ["answer", "playback", "hangup"]
    assert holiday.one("playback").endswith("/1001/welcome.wav")


async def test_forced_time_condition(services: Services, acme: int) -> None:
    async with services.sessions.begin() as session:
        await session.execute(update(TimeCondition).values(force="closed", forced_by="Rita"))
    assert "ivr" not in (await served(services, "+31201234511", now=MONDAY_MORNING)).apps
    async with services.sessions.begin() as session:
        await session.execute(update(TimeCondition).values(force="open"))
    night = await served(services, "+31201234511", now=SATURDAY_NIGHT)
    assert night.apps[-3:] == ["answer", "playback", "hangup"]  # row of priority 1


async def test_foip_receives_as_the_fax_receiver_expects(services: Services, acme: int) -> None:
    call = await served(services, "31201234512")
    variables = call.variables
    assert variables["c2_did"] == "+31201234512"  # FaxReceiver reads variable_c2_did
    assert variables["accountcode"] == "1001"
    assert variables["fax_ident"] == "+31201234512"
    assert variables["fax_enable_t38"] == variables["fax_use_ecm"] == "true"
    spool = under(services.settings.fax_spool)
    assert call.one("rxfax") == f"{spool}/rx/${{uuid}}.tif"
    assert call.apps[-4:] == ["answer", "playback", "rxfax", "hangup"]


async def test_did_without_forwarding_is_answered_as_not_in_use(
    services: Services, acme: int
) -> None:
    call = await served(services, "+31201234599")
    assert call.variables["accountcode"] == "1001"
    assert call.apps[-1] == "hangup" and call.one("hangup") == "UNALLOCATED_NUMBER"


async def test_every_did_type_is_covered_and_the_vocabularies_agree() -> None:
    """The engine routes every destination type handlers/destinations.py knows, and this test
    module serves a DID of each forwarding type."""
    assert {kind for kind, _ in DIDS.values() if kind} == set(destinations.DID_TYPES)
    assert set(dialplan.ROUTES) == set(destinations.TYPES)
    assert set(destinations.OBJECT_TYPES) == set(dialplan.OBJECT_WORDS)


# --- disabled objects, loops, inner destinations ----------------------------------------------


async def test_disabled_objects_go_to_their_failover_or_hang_up(
    services: Services, acme: int
) -> None:
    async with services.sessions.begin() as session:
        await session.execute(
            update(RingGroup).where(RingGroup.name == "sales").values(enabled=False)
        )
        await session.execute(update(Conference).values(enabled=False))
        await session.execute(update(CallQueue).values(enabled=False))
    group = await served(services, "+31201234507")
    assert "bridge" not in group.apps and group.apps[-2:] == ["answer", "voicemail"]
    conference = await served(services, "+31201234508")
    assert conference.one("hangup") == "NORMAL_TEMPORARY_FAILURE"
    assert "conference" not in conference.apps
    queue = await served(services, "+31201234509")
    assert queue.one("hangup") == "USER_BUSY" and "callcenter" not in queue.apps


async def test_a_loop_that_slipped_in_is_stopped(services: Services, acme: int) -> None:
    """Time conditions a -> b -> a (written straight to the database)."""
    async with services.sessions.begin() as session:
        for name, nxt in (("a", "b"), ("b", "a")):
            session.add(
                TimeCondition(
                    account_id=acme,
                    name=name,
                    rows=[TimeConditionRow(priority=1, dest_type="timecondition", dest_value=nxt)],
                )
            )
        await session.execute(
            update(Did)
            .where(Did.number == "+31201234599")
            .values(forward_type="timecondition", destination="a")
        )
    call = await served(services, "+31201234599")
    assert call.apps[-1] == "hangup" and call.one("hangup") == "NORMAL_TEMPORARY_FAILURE"
    async with services.sessions() as session:
        steps = (
            await dialplan.plan(
                session,
                services.settings,
                context="public",
                destination="+31201234599",
                caller="",
                now=MONDAY_MORNING,
            )
        ).steps
    assert any("time condition a again: that is a loop" in step for step in steps)


async def test_a_long_chain_stops_at_the_depth_limit(services: Services, acme: int) -> None:
    async with services.sessions.begin() as session:
        for n in range(12):
            session.add(
                TimeCondition(
                    account_id=acme,
                    name=f"t{n}",
                    failover_type="timecondition",
                    failover_value=f"t{n + 1}",
                )
            )
        await session.execute(
            update(Did)
            .where(Did.number == "+31201234599")
            .values(forward_type="timecondition", destination="t0")
        )
    async with services.sessions() as session:
        result = await dialplan.plan(
            session,
            services.settings,
            context="public",
            destination="+31201234599",
            caller="",
            now=MONDAY_MORNING,
        )
    assert result.actions == [("hangup", "NORMAL_TEMPORARY_FAILURE")]
    assert "calls stop after 8" in result.steps[-1]
    assert sum("Time condition t" in step for step in result.steps) == dialplan.MAX_HOPS


async def test_inner_destinations(services: Services, acme: int) -> None:
    """voicemail, playback and hangup as a DID's forwarding (they end a call)."""
    async with services.sessions.begin() as session:
        for number, kind, value in (
            ("+31201234599", "playback", "welcome"),
            ("+31201234501", "hangup", "rejected"),
            ("+31201234502", "voicemail", "1001-101"),  # voicemail off
        ):
            await session.execute(
                update(Did).where(Did.number == number).values(forward_type=kind, destination=value)
            )
    played = await served(services, "+31201234599")
    assert played.apps[-3:] == ["answer", "playback", "hangup"]
    assert (await served(services, "+31201234501")).one("hangup") == "CALL_REJECTED"
    no_box = await served(services, "+31201234502")
    assert no_box.one("hangup") == "NORMAL_TEMPORARY_FAILURE" and "voicemail" not in no_box.apps


# --- calls from devices ---------------------------------------------------------------------------


async def test_device_calls_another_devices_extension(services: Services, acme: int) -> None:
    call = await served(services, "100", context="c2-1001", variable_c2_device="1001-101")
    assert call.context == "c2-1001" and call.expression == "^100$"
    _, ringing = legs(call.data("bridge")[0])
    assert ringing == [({"leg_timeout": "30"}, f"user/1001-100@{DOMAIN}")]
    assert call.apps[-2:] == ["answer", "voicemail"]
    assert call.variables["accountcode"] == "1001" and "c2_did" not in call.variables


async def test_own_extension_reaches_the_voicemail_box(services: Services, acme: int) -> None:
    call = await served(services, "100", context="c2-1001", variable_c2_device="1001-100")
    assert call.one("voicemail") == f"check default {DOMAIN} 1001-100"
    assert await ask(services, "101", context="c2-1001", variable_c2_device="1001-101") is None


async def test_extensions_stay_within_the_account(services: Services, acme: int) -> None:
    assert await ask(services, "100", context="c2-2001") is None  # 2001 has no device 100
    assert await ask(services, "100", context="c2-9999") is None  # no such account
    # The PSTN from an account without a rate group: refused, not "not found".
    refused = await served(services, "+31612345678", context="c2-1001")
    assert refused.one("hangup") == "NO_ROUTE_DESTINATION"


async def test_1800_records_a_greeting(services: Services, acme: int) -> None:
    call = await served(services, "1800", context="c2-1001", variable_c2_device="1001-101")
    root = under(services.settings.recordings_dir)
    recording = ["answer", "set", "set", "set", "playback", "playback", "record", "hangup"]
    assert call.apps == ["set"] * 6 + recording
    variables = call.variables
    assert variables["c2_record_account"] == "1001"
    assert variables["c2_record_device"] == "1001-101"
    assert variables["c2_record_file"] == f"{root}/1001/phone-${{uuid}}.wav"
    assert call.one("record") == "${c2_record_file} 300 200 3"
    assert call.data("playback")[0] == "voicemail/vm-record_message.wav"


async def test_1800_plays_the_accounts_own_prompt(services: Services, acme: int) -> None:
    async with services.sessions.begin() as session:
        session.add(
            Recording(
                account_id=acme,
                name="record-prompt",
                filename="1001/prompt.wav",
                sample_rate=8000,
                duration_ms=1000,
                size=16044,
            )
        )
    call = await served(services, "1800", context="c2-1001")
    root = under(services.settings.recordings_dir)
    assert call.data("playback")[0] == f"{root}/1001/prompt.wav"
    assert call.variables["c2_record_device"] == "${c2_device}"  # FreeSWITCH fills it in


async def test_ivr_transfer_targets_route_in_the_account(services: Services, acme: int) -> None:
    """ivr.conf transfers to `transfer_target(...)` in context c2-<account>."""
    group = transfer_target("1001", "ringgroup", "support")
    call = await served(services, group, context="c2-1001")
    assert call.expression == f"^{re.escape(group)}$"
    assert re.fullmatch(call.expression, group)
    assert legs(call.one("bridge"))[0] == "|"
    devices = transfer_target("1001", "local", "1001-100,1001-101")
    assert len(legs((await served(services, devices, context="c2-1001")).one("bridge"))[1]) == 2
    # the same target in another account's context finds nothing there
    assert (await served(services, group, context="c2-2001")).apps[-1] == "hangup"


async def test_transfer_targets_leaving_the_account_need_an_ivr_sending_there(
    services: Services, acme: int
) -> None:
    """A device must not reach the PSTN by dialling a target's number itself."""
    mobile = transfer_target("1001", "pstn", "+31612345678")
    call = await served(services, mobile, context="c2-1001")
    assert call.one("bridge") == f"{GATEWAY}+31612345678"  # IVR main, digit 9
    other = transfer_target("1001", "pstn", "+4420794600000")
    assert await ask(services, other, context="c2-1001") is None
    raw = transfer_target("1001", "other", "sofia/gateway/pstn/+900123")
    assert await ask(services, raw, context="c2-1001") is None


# --- the document, the database, the HTTP endpoint --------------------------------------------


async def test_markup_in_values_is_escaped(services: Services, acme: int) -> None:
    async with services.sessions.begin() as session:
        await session.execute(
            update(RingGroup).where(RingGroup.name == "sales").values(cid_name_prefix='<A&B "x">')
        )
    call = await served(services, "+31201234507")
    assert call.variables["effective_caller_id_name"] == '<A&B "x">${caller_id_name}'


async def test_a_change_routes_the_next_call(services: Services, acme: int) -> None:
    """Nothing is cached between calls."""
    assert (await served(services, "+31201234505")).one("bridge") == f"{GATEWAY}+31612345678"
    async with services.sessions.begin() as session:
        await session.execute(
            update(Did).where(Did.number == "+31201234505").values(destination="+31687654321")
        )
    assert (await served(services, "+31201234505")).one("bridge") == f"{GATEWAY}+31687654321"


async def test_few_queries_per_call(services: Services, acme: int) -> None:
    """DID -> time condition -> IVR -> ring group (with members, their devices and its
    recordings) -> voicemail: one query per hop, however many members."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(services.engine.sync_engine, "before_cursor_execute", count)
    try:  # the same walk as `answer`, read through a session so SQLAlchemy sees each query
        async with services.sessions() as session:
            result = await dialplan.plan(
                session,
                services.settings,
                context="public",
                destination="+31201234511",
                caller="",
                now=MONDAY_MORNING,
            )
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 5, selects
    assert ("ivr", "c2-1001-main") in result.actions


async def post_dialplan(services: Services, body: bytes) -> bytes:
    """`body` posted to /freeswitch/dialplan through our HTTP app, as mod_xml_curl posts it;
    the answer's bytes (it must be a 200)."""
    app = build_http_app(services, None, CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.post(
            "/freeswitch/dialplan",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    return response.content


async def test_the_http_endpoint_serves_the_recorded_bytes(services: Services, acme: int) -> None:
    """The recorded request, byte for byte but for the number, through the ASGI app."""
    body = SERVED_POST.calling("+31201234510", "public")
    assert body.count(b"%2B31201234510") == 2
    call = read(await post_dialplan(services, body))
    assert call is not None and call.context == "public"
    assert call.one("ivr") == "c2-1001-main"


async def test_the_switch_and_route_test_read_alike(services: Services, acme: int) -> None:
    """`answer` reads on the driver itself, `plan` (route test) through a session: the same
    document for every number and time."""
    for now in (MONDAY_MORNING, SATURDAY_NIGHT, KINGS_DAY):
        for number in DIDS:
            params = post_for(number)
            served_xml = await dialplan.answer(services.sessions, services.settings, params, now)
            async with services.sessions() as session:
                planned = await dialplan.plan(
                    session,
                    services.settings,
                    context="public",
                    destination=number,
                    caller="",
                    now=now,
                )
            assert served_xml == dialplan.render(planned), number


async def test_sessions_of_another_engine_are_read_through_the_session(
    services: Services, acme: int, tmp_path: Path
) -> None:
    """`answer` makes its own connections from C2_DATABASE_URL only when the sessions' engine
    is that database; otherwise it reads through a session, with the same answer."""
    other = services.settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"}
    )
    params = post_for("+31201234511")
    assert await dialplan.answer(services.sessions, other, params, MONDAY_MORNING) == (
        await dialplan.answer(services.sessions, services.settings, params, MONDAY_MORNING)
    )
    assert not (tmp_path / "elsewhere.db").exists()


async def test_lookup_connections_close_with_the_engine(services: Services, acme: int) -> None:
    """PostgreSQL lookups have a pool of their own: closed when the engine is disposed, opened
    again by the next lookup."""
    assert (await served(services, "+31201234505")).one("bridge").endswith("+31612345678")
    engine = services.engine
    pool = await lookups._PG_POOLS[engine] if engine.dialect.name == "postgresql" else None
    await engine.dispose()
    assert engine not in lookups._PG_POOLS
    if pool is not None:
        assert pool.is_closing()
    assert (await served(services, "+31201234505")).one("bridge").endswith("+31612345678")


async def test_members_that_are_no_device_any_more_are_not_dialled(
    services: Services, acme: int
) -> None:
    """A removed device's name (or anything but an E.164 number) is skipped, never sent to the
    PSTN gateway."""
    async with services.sessions.begin() as session:
        device = await session.scalar(select(SipDevice).where(SipDevice.username == "1001-103"))
        await session.delete(device)
        group = await session.scalar(select(RingGroup).where(RingGroup.name == "support"))
        assert group is not None
        group.members.append(RingGroupMember(position=3, target="5550100", timeout=15))
    call = await served(services, "+31201234514")
    assert [endpoint for _, endpoint in legs(call.one("bridge"))[1]] == [f"user/1001-101@{DOMAIN}"]
    async with services.sessions() as session:
        steps = (
            await dialplan.plan(
                session,
                services.settings,
                context="public",
                destination="+31201234514",
                caller="",
                now=MONDAY_MORNING,
            )
        ).steps
    assert "Member 1001-103 is no device (any more): skipped." in steps
    assert "Member 5550100 is no device (any more): skipped." in steps


async def test_an_unknown_account_time_zone_routes_in_utc(services: Services, acme: int) -> None:
    async with services.sessions.begin() as session:
        await session.execute(
            update(Account).where(Account.id == acme).values(timezone="Mars/Olympus")
        )
    # 16:30 UTC on a Monday: open in UTC (the office row); in Amsterdam (17:30) it is closed
    call = await served(services, "+31201234511", now=datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    assert call.one("ivr") == "c2-1001-main"
    night = await served(services, "+31201234511", now=datetime(2026, 11, 23, 17, 30, tzinfo=UTC))
    assert "ivr" not in night.apps
