"""The PBX modals over signed Slack requests: they open (filled in for edits), refuse in place,
save before the ack, and take a WAV through the Slack stand-in's file download."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from c2bot.config.settings import Settings
from c2bot.handlers import ivrs, recordings
from c2bot.storage.models import Channel, Conference, Ivr, Recording, SlackInbox, TimeCondition
from tests.bot.slack.conftest import Json, SlackDriver, shown, slack_settings
from tests.conftest import World
from tests.handlers.test_ivrs import pbx
from tests.handlers.test_recordings import NEEDED, wav_bytes
from tests.support.slack import SlackStandIn


@pytest.fixture
def settings(database_url: str, slack: SlackStandIn, tmp_path: Path) -> Settings:
    return slack_settings(database_url, slack, C2_RECORDINGS_DIR=str(tmp_path / "recordings"))


def typed(value: str | None) -> Json:
    return {"value": {"type": "plain_text_input", "value": value}}


def picked(value: str) -> Json:
    option = {"text": {"type": "plain_text", "text": value}, "value": value}
    return {"value": {"type": "static_select", "selected_option": option}}


def ivr_values(name: str = "main", **given: str) -> Json:
    """view.state.values of the IVR modal as Slack sends it (every box, empty ones as None)."""
    values: Json = {
        box: typed(given.get(box))
        for box in ("greeting", "invalid", "exit", "cid_prefix", "ringback", "failover", "options")
    }
    values |= {"timeout": typed(given.get("timeout", "10")), "retries": typed("3")}
    values["direct_dial"] = picked(given.get("direct_dial", "no"))
    if name:
        values["name"] = typed(name)
    return values


def meta(form: str, name: str = "", account: str = "") -> str:
    return json.dumps({"form": form, "name": name, "account": account})


def block(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


async def dm(bot: SlackDriver, user: str, before: int) -> str:
    """The text of the first direct message to `user` after the first `before` messages."""
    call = await bot.next_call("chat.postMessage", before)
    await bot.door.drain()
    assert call.params["channel"] == user
    return shown(call.params)


async def test_the_ivr_modal_opens_with_the_accounts(bot: SlackDriver, world: World) -> None:
    """`/c2 ivr add` opens the IVR modal; a reseller picks one of its accounts."""
    reply = await bot.command("ivr add", "URES", command="/c2", trigger_id="T-ivr")
    call = await bot.slack.wait_for("views.open")
    view = call.params["view"]
    assert reply.status_code == 200 and call.params["trigger_id"] == "T-ivr"
    assert view["callback_id"] == "pbx_ivr"
    assert json.loads(view["private_metadata"])["form"] == "ivr_add"
    assert [b.get("block_id") for b in view["blocks"]] == [
        "account",
        "name",
        "greeting",
        "invalid",
        "exit",
        "timeout",
        "retries",
        "direct_dial",
        "cid_prefix",
        "ringback",
        "failover",
        "options",
    ]
    accounts = [o["value"] for o in block(view, "account")["element"]["options"]]
    assert accounts == ["1001", "1002", "R100"]
    assert block(view, "timeout")["element"]["initial_value"] == "10"
    assert block(view, "options")["element"]["multiline"] is True


async def test_ivr_submission_refuses_in_place_then_saves(bot: SlackDriver, world: World) -> None:
    """Errors stay in the modal next to their box; a good submission is saved before the ack
    and confirmed in a direct message."""
    await pbx(bot.services)
    cases = [
        (ivr_values(greeting="nope"), "greeting", "Account 1001 has no recording 'nope'"),
        (ivr_values(options="1 ivr main"), "options", "line 1 (1 ivr main): That would make a"),
        (ivr_values(timeout="99"), "timeout", "1 to 60"),
        (ivr_values(name="bad name"), "name", "letters, digits"),
    ]
    for values, box, words in cases:
        reply = await bot.submit("UCUST", "pbx_ivr", values, meta("ivr_add"))
        answer = reply.json()
        assert answer["response_action"] == "errors", box
        assert list(answer["errors"]) == [box], answer
        assert words in answer["errors"][box], answer
    async with bot.services.sessions() as session:
        assert await session.scalar(select(Ivr.id)) is None
    before = len(bot.slack.calls_to("chat.postMessage"))
    good = ivr_values(greeting="welcome", options="1 ringgroup sales\n0 hangup busy")
    reply = await bot.submit("UCUST", "pbx_ivr", good, meta("ivr_add"))
    assert (reply.status_code, reply.content) == (200, b"")
    async with bot.services.sessions() as session:
        ivr = await session.scalar(select(Ivr))
    assert ivr is not None and ivr.greeting == "welcome"
    assert [(o.digit, o.dest_type, o.dest_value) for o in ivr.options] == [
        ("0", "hangup", "busy"),
        ("1", "ringgroup", "sales"),
    ]
    assert "IVR main added to account 1001." in await dm(bot, "UCUST", before)


async def test_edit_opens_filled_in_and_saves(bot: SlackDriver, world: World) -> None:
    """`/c2 ivr edit main` opens the modal with the menu as it is; the submission changes it."""
    await pbx(bot.services)
    ctx = bot.services.context(world.customer, Channel.SHELL)
    await ivrs.add_ivr(ctx, "main", None, ivrs.IvrChanges(timeout="7", options="1 ringgroup sales"))
    await bot.command("ivr edit main", "UCUST", command="/c2", trigger_id="T-edit")
    call = await bot.slack.wait_for("views.open")
    view = call.params["view"]
    assert json.loads(view["private_metadata"]) == {
        "form": "ivr_edit",
        "name": "main",
        "account": "1001",
    }
    assert "name" not in [b.get("block_id") for b in view["blocks"]]
    assert block(view, "timeout")["element"]["initial_value"] == "7"
    assert block(view, "options")["element"]["initial_value"] == "1 ringgroup sales"
    assert block(view, "status")["element"]["initial_option"]["value"] == "on"
    values = ivr_values(name="", timeout="12", options="2 ringgroup sales")
    values["status"] = picked("off")
    reply = await bot.submit("UCUST", "pbx_ivr", values, meta("ivr_edit", "main", "1001"))
    assert reply.status_code == 200 and reply.content == b""
    async with bot.services.sessions() as session:
        ivr = await session.scalar(select(Ivr))
    assert ivr is not None and (ivr.timeout, ivr.enabled) == (12, False)
    assert [o.digit for o in ivr.options] == ["2"]


async def test_time_condition_and_conference_modals(bot: SlackDriver, world: World) -> None:
    """Rows are lines in the row words (a bad line is named); a conference takes its PIN."""
    await pbx(bot.services)
    rows = "09:00-17:30 days:mon-fri priority:1 ringgroup sales\nholiday country:NL playback bye"
    bad = {
        "name": typed("office"),
        "failover": typed("voicemail 100"),
        "rows": typed("09:00-17:30 ringgroup sales\n31:00-32:00 hangup"),
    }
    reply = await bot.submit("UCUST", "pbx_timecondition", bad, meta("timecondition_add"))
    errors = reply.json()["errors"]
    assert list(errors) == ["rows"] and errors["rows"].startswith(
        "Rows, line 2 (31:00-32:00 hangup): '31:00' is not a time of day"
    )
    good = bad | {"rows": typed(rows)}
    reply = await bot.submit("UCUST", "pbx_timecondition", good, meta("timecondition_add"))
    assert reply.content == b""
    async with bot.services.sessions() as session:
        tc = await session.scalar(select(TimeCondition))
    assert tc is not None and (tc.failover_type, tc.failover_value) == ("voicemail", "1001-100")
    assert sorted((r.kind, r.priority) for r in tc.rows) == [("holiday", 2), ("time", 1)]
    conference = {
        "name": typed("team"),
        "greeting": typed(None),
        "profile": typed("default"),
        "pin": typed("12"),
    }
    reply = await bot.submit("UCUST", "pbx_conference", conference, meta("conference_add"))
    assert list(reply.json()["errors"]) == ["pin"]
    reply = await bot.submit(
        "UCUST", "pbx_conference", conference | {"pin": typed("4321")}, meta("conference_add")
    )
    assert reply.content == b""
    async with bot.services.sessions() as session:
        team = await session.scalar(select(Conference))
    assert team is not None and (team.pin, team.profile) == ("4321", "default")


def upload_values(name: str, files: list[Json]) -> Json:
    return {"name": typed(name), "files": {"value": {"type": "file_input", "files": files}}}


async def test_a_wav_upload_is_fetched_checked_and_kept(
    bot: SlackDriver, world: World, settings: Settings
) -> None:
    """The modal asks for one WAV; the file comes from Slack's download with the bot token,
    is kept under the account, and the asker hears back; a stereo file is refused in words."""
    await bot.command("recording add", "UCUST", command="/c2", trigger_id="T-rec")
    view = (await bot.slack.wait_for("views.open")).params["view"]
    element = block(view, "files")["element"]
    assert (element["type"], element["filetypes"], element["max_files"]) == (
        "file_input",
        ["wav"],
        1,
    )
    reply = await bot.submit(
        "UCUST", "pbx_recording", upload_values("welcome", []), meta("recording_add")
    )
    assert reply.json()["errors"] == {"files": "Attach one WAV file."}
    data = wav_bytes(16000, seconds=1)
    hosted = bot.slack.host_file("welcome.wav", data, "audio/wav")
    before = len(bot.slack.calls_to("chat.postMessage"))
    reply = await bot.submit(
        "UCUST", "pbx_recording", upload_values("welcome", [hosted]), meta("recording_add")
    )
    assert (reply.status_code, reply.content) == (200, b"")
    assert "Recording welcome added to account 1001." in await dm(bot, "UCUST", before)
    async with bot.services.sessions() as session:
        kept = list(await session.scalars(select(SlackInbox)))
        stored = await session.scalar(select(Recording))
    assert [(row.kind, row.done_at is not None) for row in kept] == [("recording_upload", True)]
    assert stored is not None and stored.sample_rate == 16000 and stored.duration_ms == 1000
    assert (settings.recordings_dir / stored.filename).read_bytes() == data
    stereo = bot.slack.host_file("stereo.wav", wav_bytes(channels=2), "audio/wav")
    before = len(bot.slack.calls_to("chat.postMessage"))
    await bot.submit(
        "UCUST", "pbx_recording", upload_values("two", [stereo]), meta("recording_add")
    )
    refusal = await dm(bot, "UCUST", before)
    assert f"The WAV is 16-bit stereo at 8000 Hz (stereo); {NEEDED}" in refusal
    taken = await bot.submit(
        "UCUST", "pbx_recording", upload_values("welcome", [hosted]), meta("recording_add")
    )
    assert "already has a recording 'welcome'" in taken.json()["errors"]["name"]


async def test_a_replayed_upload_stores_one_recording(bot: SlackDriver, world: World) -> None:
    """A kept upload replayed twice after a crash makes one recording and one file."""
    hosted = bot.slack.host_file("hold.wav", wav_bytes(), "audio/wav")
    payload = {"view_id": "V42", "values": upload_values("hold", [hosted])}
    await bot.door.kit.inbox.keep("recording_upload", "UCUST", payload)
    await bot.door.kit.inbox.keep("recording_upload", "UCUST", payload)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 2
    await bot.door.drain()
    async with bot.services.sessions() as session:
        names = list(await session.scalars(select(Recording.name)))
        done = list(await session.scalars(select(SlackInbox.done_at)))
    assert names == ["hold"] and all(done)
    files = list(bot.services.settings.recordings_dir.rglob("*.wav"))
    assert len(files) == 1


async def test_recording_play_sends_the_file(bot: SlackDriver, world: World) -> None:
    """`/c2 recording play NAME` answers with the details and DMs the WAV itself."""
    data = wav_bytes(8000, seconds=0.75)
    ctx = bot.services.context(world.customer, Channel.SHELL)
    await recordings.add_recording(ctx, recordings.NewRecording("welcome", data))
    answer = await bot.answer_to("recording play welcome", "UCUST", command="/c2")
    assert "Recording welcome" in shown(answer) and "0.8 s" in shown(answer)
    await bot.slack.wait_for("files.completeUploadExternal")
    upload = next(iter(bot.slack.uploads.values()))
    assert (upload.filename, upload.channel_id, upload.data) == ("1001-welcome.wav", "DUCUST", data)
