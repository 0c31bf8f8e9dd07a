"""ivr.conf, conference.conf and callcenter.conf built from real routing objects."""

from __future__ import annotations

import os
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from c2bot.storage.crypto import seal
from c2bot.storage.models import (
    Account,
    CallQueue,
    Conference,
    ConferenceControl,
    ConferenceProfile,
    Ivr,
    IvrOption,
    QueueAgent,
    Recording,
    SipDevice,
)
from c2bot.switch import configuration
from c2bot.switch.targets import parse_transfer_target, transfer_target
from tests.conftest import World, test_settings
from tests.support.xmlcurl import is_not_found, parse_document, recorded_posts

POSTS = {post.label: post.params for post in recorded_posts("xml_curl_configuration.txt")}
STARTUP_CONFERENCE = POSTS["startup-5"]  # mod_conference loading, the recorded post


@pytest.fixture
def settings(database_url: str, tmp_path: Any) -> Settings:
    return test_settings(
        database_url,
        C2_RECORDINGS_DIR=str(tmp_path / "rec"),
        C2_SIP_DOMAIN="{account}.sip.c2.test",
        C2_PSTN_GATEWAY="sofia/gateway/carrier/",
    )


async def account_id(services: Services, number: str) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.id).where(Account.number == number))
    assert found is not None
    return found


async def add(services: Services, *objects: Any) -> None:
    async with services.sessions.begin() as session:
        session.add_all(objects)


async def recording(services: Services, number: str, name: str, filename: str) -> Recording:
    owner = await account_id(services, number)
    return Recording(
        account_id=owner, name=name, filename=filename, sample_rate=8000, duration_ms=1, size=1
    )


async def ask(services: Services, file: str, **extra: str) -> Element:
    params = STARTUP_CONFERENCE | {"key_value": file, **extra}
    return parse_document(await configuration.answer(services.sessions, services.settings, params))


def params_of(element: Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in element.findall("param")}


def recorded(settings: Settings, filename: str) -> str:
    return os.path.join(os.path.abspath(settings.recordings_dir), filename)


# -- the recorded posts ------------------------------------------------------------------------
async def test_files_we_do_not_serve_are_not_found(services: Services, world: World) -> None:
    """sofia.conf, acl.conf, ... as FreeSWITCH asked for them: "not found", it uses its own."""
    others = {label: p for label, p in POSTS.items() if p["key_value"] != "conference.conf"}
    assert len(others) == 19
    for label, params in others.items():
        answer = await configuration.answer(services.sessions, services.settings, params)
        assert is_not_found(parse_document(answer)), label


async def test_recorded_conference_load_gets_default_profile_and_controls(
    services: Services, world: World
) -> None:
    """The recorded start-up post for conference.conf, with no profiles stored: our default."""
    answer = await configuration.answer(services.sessions, services.settings, STARTUP_CONFERENCE)
    document = parse_document(answer)
    config = document.find("section[@name='configuration']/configuration[@name='conference.conf']")
    assert config is not None
    profile = config.find("profiles/profile[@name='default']")
    assert profile is not None
    values = params_of(profile)
    assert values["rate"] == "8000" and values["interval"] == "20"
    assert values["energy-level"] == "100" and values["comfort-noise"] == "true"
    assert values["moh-sound"] == "local_stream://moh"
    assert values["caller-controls"] == "default"
    group = config.find("caller-controls/group[@name='default']")
    assert group is not None
    controls = {c.get("digits"): c.get("action") for c in group.findall("control")}
    assert controls["0"] == "mute" and controls["#"] == "hangup" and controls["3"] == "vol talk up"


# -- ivr.conf ----------------------------------------------------------------------------------
async def make_ivrs(services: Services) -> None:
    a1001, a1002 = await account_id(services, "1001"), await account_id(services, "1002")
    main = Ivr(
        account_id=a1001,
        name="main",
        greeting="welcome",
        exit_sound="bye",
        timeout=7,
        retries=2,
        direct_dial=True,
        failover_type="pstn",
        failover_value="+31201234599",
        options=[
            IvrOption(digit="1", dest_type="ivr", dest_value="sales & support"),
            IvrOption(digit="2", dest_type="ringgroup", dest_value="office"),
            IvrOption(digit="0", dest_type="local", dest_value="1001-100,1001-101"),
        ],
    )
    sub = Ivr(account_id=a1001, name="sales & support", invalid_sound="oops")
    off = Ivr(account_id=a1001, name="old", enabled=False)
    other = Ivr(account_id=a1002, name="main", greeting="welcome")
    await add(
        services,
        main,
        sub,
        off,
        other,
        await recording(services, "1001", "welcome", "1001/welcome.wav"),
        await recording(services, "1001", "bye", "1001/bye.wav"),
        await recording(services, "1002", "welcome", "1002/hallo.wav"),
    )


async def test_ivr_menu_routes_every_option_through_our_dialplan(
    services: Services, world: World
) -> None:
    """A menu's options transfer to targets the dialplan parses back; direct dial and failover
    are there; sounds are the account's own recordings."""
    await make_ivrs(services)
    document = await ask(services, "ivr.conf", **{"Menu-Name": "c2-1001-main"})
    menus = document.findall("section/configuration[@name='ivr.conf']/menus/menu")
    assert [m.get("name") for m in menus] == ["c2-1001-main"]
    menu = menus[0]
    settings = services.settings
    assert (
        menu.get("greet-long") == menu.get("greet-short") == recorded(settings, "1001/welcome.wav")
    )
    assert menu.get("exit-sound") == recorded(settings, "1001/bye.wav")
    assert menu.get("invalid-sound") == "ivr/ivr-that_was_an_invalid_entry.wav"
    assert (menu.get("timeout"), menu.get("max-failures"), menu.get("max-timeouts")) == (
        "7000",
        "2",
        "2",
    )
    assert menu.get("digit-len") == "5"
    failover = f"transfer {transfer_target('1001', 'pstn', '+31201234599')} XML c2-1001"
    assert menu.get("exec-on-max-failures") == menu.get("exec-on-max-timeouts") == failover
    entries = {e.get("digits"): e.get("param", "") for e in menu.findall("entry")}
    assert {e.get("action") for e in menu.findall("entry")} == {"menu-exec-app"}
    assert entries[r"/^(\d{2,5})$/"] == "transfer $1 XML c2-1001"
    routed = {}
    for digit in "120":
        app, target, xml, context = entries[digit].split(" ")
        assert (app, xml, context) == ("transfer", "XML", "c2-1001")
        routed[digit] = parse_transfer_target(target)
    assert routed == {
        "1": ("ivr", "sales & support"),
        "2": ("ringgroup", "office"),
        "0": ("local", "1001-100,1001-101"),
    }


async def test_all_menus_at_once_and_names_escaped(services: Services, world: World) -> None:
    """Without Menu-Name every enabled menu of every account; odd names are made safe."""
    await make_ivrs(services)
    document = await ask(services, "ivr.conf")
    menus = {m.get("name"): m for m in document.iterfind("section/configuration/menus/menu")}
    assert set(menus) == {"c2-1001-main", "c2-1001-sales%20%26%20support", "c2-1002-main"}
    sub = menus["c2-1001-sales%20%26%20support"]
    assert sub.get("digit-len") == "1" and sub.findall("entry") == []
    assert sub.get("invalid-sound") == "ivr/ivr-that_was_an_invalid_entry.wav"  # no such recording
    assert "exec-on-max-failures" not in sub.attrib and "greet-long" not in sub.attrib
    # another account's recording with the same name is its own file
    assert menus["c2-1002-main"].get("greet-long") == recorded(services.settings, "1002/hallo.wav")


async def test_unknown_or_disabled_menu_is_not_found(services: Services, world: World) -> None:
    """A menu we do not have (or that is switched off) is "not found"."""
    await make_ivrs(services)
    for menu in ["c2-1001-old", "c2-1001-nothing", "c2-9999-main", "main", "c2-1001-main "]:
        assert is_not_found(await ask(services, "ivr.conf", **{"Menu-Name": menu})), menu


async def test_empty_ivr_conf_is_still_a_document(services: Services, world: World) -> None:
    """With no IVRs, the full ivr.conf is an empty <menus>, not an error."""
    document = await ask(services, "ivr.conf")
    assert document.findall("section/configuration/menus/menu") == []


async def test_account_numbers_with_dashes(services: Services, world: World) -> None:
    """`c2-<account>-<name>` is found even when the account number has a dash in it."""
    await add(services, Account(number="NL-7", company="Dash BV", email="d@dash.nl"))
    owner = await account_id(services, "NL-7")
    await add(services, Ivr(account_id=owner, name="x-y"))
    document = await ask(services, "ivr.conf", **{"Menu-Name": "c2-NL-7-x-y"})
    assert [m.get("name") for m in document.iterfind("section/configuration/menus/menu")] == [
        "c2-NL-7-x-y"
    ]


# -- conference.conf ---------------------------------------------------------------------------
async def make_profiles(services: Services) -> None:
    a1001 = await account_id(services, "1001")
    board = ConferenceProfile(
        account_id=a1001,
        name="board",
        params={
            "rate": 16000,
            "comfort-noise": False,
            "enter-sound": "ding",
            "alone-sound": "conference/conf-alone.wav",
            "caller-id-name": 'Acme <&"> BV',
            "auto-record": "/etc/passwd",
            "caller-controls": "none",
            "nonsense": "x",
        },
        controls=[
            ConferenceControl(digits="1", action="volume-talk-up"),
            ConferenceControl(digits="0", action="Mute"),
            ConferenceControl(digits="#", action="hang up"),
            ConferenceControl(digits="5", action="execute_application"),
            ConferenceControl(digits="9", action="energy equal"),
        ],
    )
    quiet = ConferenceProfile(account_id=a1001, name="quiet", params={"energy-level": 300})
    await add(
        services,
        board,
        quiet,
        Conference(account_id=a1001, name="weekly", profile="board", pin="1234"),
        await recording(services, "1001", "ding", "1001/ding.wav"),
    )


async def test_stored_profiles_with_their_controls(services: Services, world: World) -> None:
    """All profiles at start-up: ours by default, the account's with their own params (only
    known, safe ones), sounds as recordings, and their controls in FreeSWITCH's words."""
    await make_profiles(services)
    config = (await ask(services, "conference.conf")).find("section/configuration")
    assert config is not None
    profiles = {p.get("name"): params_of(p) for p in config.iterfind("profiles/profile")}
    assert set(profiles) == {"default", "c2-1001-board", "c2-1001-quiet"}
    board = profiles["c2-1001-board"]
    assert board["rate"] == "16000" and board["comfort-noise"] == "false"
    assert board["interval"] == "20"  # default kept
    assert board["enter-sound"] == recorded(services.settings, "1001/ding.wav")
    assert board["alone-sound"] == "conference/conf-alone.wav"
    assert board["caller-id-name"] == 'Acme <&"> BV'
    assert board["caller-controls"] == "c2-1001-board"
    assert "auto-record" not in board and "nonsense" not in board
    assert profiles["c2-1001-quiet"]["energy-level"] == "300"
    assert profiles["c2-1001-quiet"]["caller-controls"] == "default"
    groups = {g.get("name"): g for g in config.iterfind("caller-controls/group")}
    assert set(groups) == {"default", "c2-1001-board"}
    controls = {c.get("digits"): c.get("action") for c in groups["c2-1001-board"]}
    assert controls == {"#": "hangup", "0": "mute", "1": "vol talk up", "9": "energy equ"}


async def test_profile_asked_by_name(services: Services, world: World) -> None:
    """mod_conference starting a conference asks for one profile: it gets only that one."""
    await make_profiles(services)
    config = (await ask(services, "conference.conf", profile_name="c2-1001-board")).find(
        "section/configuration"
    )
    assert config is not None
    assert [p.get("name") for p in config.iterfind("profiles/profile")] == ["c2-1001-board"]
    assert {g.get("name") for g in config.iterfind("caller-controls/group")} == {
        "default",
        "c2-1001-board",
    }


async def test_default_profile_for_any_account(services: Services, world: World) -> None:
    """An account without its own "default" profile gets ours under its name."""
    await make_profiles(services)
    for name in ["default", "c2-1002-default", "c2-1001-default"]:
        config = (await ask(services, "conference.conf", profile_name=name)).find(
            "section/configuration"
        )
        assert config is not None
        profiles = config.findall("profiles/profile")
        assert [p.get("name") for p in profiles] == [name]
        assert params_of(profiles[0])["caller-controls"] == "default"


async def test_unknown_profile_is_not_found(services: Services, world: World) -> None:
    """A profile we do not have is "not found" (FreeSWITCH may have it in its own files)."""
    await make_profiles(services)
    for name in ["c2-1001-nothing", "c2-1002-board", "bogus"]:
        assert is_not_found(await ask(services, "conference.conf", profile_name=name)), name


async def test_member_controls_asked_by_group(services: Services, world: World) -> None:
    """A member joining asks for its controls group only."""
    await make_profiles(services)
    extra = {"Action": "request-controls", "Conf-Profile": "c2-1001-board"}
    config = (await ask(services, "conference.conf", Controls="c2-1001-board", **extra)).find(
        "section/configuration"
    )
    assert config is not None
    assert [g.get("name") for g in config.iterfind("caller-controls/group")] == ["c2-1001-board"]
    assert config.findall("profiles/profile") == []
    default = await ask(services, "conference.conf", Controls="default", **extra)
    assert [
        g.get("name") for g in default.iterfind("section/configuration/caller-controls/group")
    ] == ["default"]
    missing = await ask(services, "conference.conf", Controls="c2-1001-quiet", **extra)
    assert is_not_found(missing)  # quiet uses "default"; no group of its own


# -- callcenter.conf ---------------------------------------------------------------------------
async def make_queues(services: Services) -> None:
    a1001, a2001 = await account_id(services, "1001"), await account_id(services, "2001")
    sealed = seal(services.settings, "pw")
    await add(
        services,
        SipDevice(account_id=a1001, username="1001-100", extension="100", password_sealed=sealed),
        SipDevice(account_id=a1001, username="1001-101", extension="101", password_sealed=sealed),
        SipDevice(
            account_id=a1001,
            username="1001-102",
            extension="102",
            password_sealed=sealed,
            enabled=False,
        ),
        SipDevice(account_id=a2001, username="2001-100", extension="100", password_sealed=sealed),
        await recording(services, "1001", "jazz", "1001/jazz.wav"),
        CallQueue(
            account_id=a1001,
            name="sales",
            strategy="ring-all",
            moh="jazz",
            timeout=120,
            agents=[
                QueueAgent(position=1, target="1001-100"),
                QueueAgent(position=2, target="+31612345678"),
                QueueAgent(position=3, target="2001-100"),  # another account's device
                QueueAgent(position=4, target="1001-102"),  # disabled device
            ],
        ),
        CallQueue(
            account_id=a1001,
            name="support",
            strategy="no-such-strategy",
            agents=[
                QueueAgent(position=1, target="1001-101"),
                QueueAgent(position=2, target="1001-100"),
            ],
        ),
        CallQueue(account_id=a1001, name="closed", enabled=False),
    )


async def test_queues_agents_and_tiers(services: Services, world: World) -> None:
    """Every enabled queue with its settings; one agent per device or number of the account,
    rung as user/ or through the carrier gateway; tiers in the queue's order."""
    await make_queues(services)
    config = (await ask(services, "callcenter.conf")).find(
        "section/configuration[@name='callcenter.conf']"
    )
    assert config is not None
    queues = {q.get("name"): params_of(q) for q in config.iterfind("queues/queue")}
    assert set(queues) == {"c2-1001-sales@default", "c2-1001-support@default"}
    sales = queues["c2-1001-sales@default"]
    assert sales["strategy"] == "ring-all"
    assert sales["moh-sound"] == recorded(services.settings, "1001/jazz.wav")
    assert sales["max-wait-time"] == "120"
    assert sales["time-base-score"] == "system"
    support = queues["c2-1001-support@default"]
    assert (
        support["strategy"] == "longest-idle-agent" and support["moh-sound"] == "local_stream://moh"
    )
    agents = {a.get("name"): a.attrib for a in config.iterfind("agents/agent")}
    ring = "[leg_timeout=20,accountcode=1001]"
    assert {name: a["contact"] for name, a in agents.items()} == {
        "c2-1001-1001-100@default": f"{ring}user/1001-100@1001.sip.c2.test",
        "c2-1001-%2B31612345678@default": f"{ring}sofia/gateway/carrier/+31612345678",
        "c2-1001-1001-101@default": f"{ring}user/1001-101@1001.sip.c2.test",
    }
    assert {a["type"] for a in agents.values()} == {"callback"}
    assert {a["status"] for a in agents.values()} == {"Available"}
    tiers = [
        (t.get("queue"), t.get("agent"), t.get("level")) for t in config.iterfind("tiers/tier")
    ]
    assert tiers == [
        ("c2-1001-sales@default", "c2-1001-1001-100@default", "1"),
        ("c2-1001-sales@default", "c2-1001-%2B31612345678@default", "2"),
        ("c2-1001-support@default", "c2-1001-1001-101@default", "1"),
        ("c2-1001-support@default", "c2-1001-1001-100@default", "2"),
    ]


async def test_queue_asked_by_name(services: Services, world: World) -> None:
    """mod_callcenter loading one queue (CC-Queue) gets that queue only; others not found."""
    await make_queues(services)
    config = (
        await ask(services, "callcenter.conf", **{"CC-Queue": "c2-1001-support@default"})
    ).find("section/configuration")
    assert config is not None
    assert [q.get("name") for q in config.iterfind("queues/queue")] == ["c2-1001-support@default"]
    assert {t.get("queue") for t in config.iterfind("tiers/tier")} == {"c2-1001-support@default"}
    for missing in ("c2-1001-closed@default", "c2-1001-sales", "sales@default"):
        assert is_not_found(await ask(services, "callcenter.conf", **{"CC-Queue": missing}))
