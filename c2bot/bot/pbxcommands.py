"""`/c2 ivr|timecondition|conference|confprofile|recording` and `/route tc`: the words of the
PBX objects, each verb one call into its handler.

`add` with no words opens a form in Slack (text doors explain the one-line form); `edit NAME`
with nothing to change opens the form filled in with the object as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import conferences, ivrs, recordings, tcs
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import describe_types
from c2bot.handlers.errors import Invalid
from c2bot.handlers.replies import OpenForm, Reply

IVR_ADD, IVR_EDIT = "ivr_add", "ivr_edit"
TC_ADD, TC_EDIT = "timecondition_add", "timecondition_edit"
CONFERENCE_ADD, CONFERENCE_EDIT = "conference_add", "conference_edit"
RECORDING_ADD = "recording_add"

ACCOUNT = Param("account", "account number (resellers and staff; found by name otherwise)")
ON_OFF = ("on", "off")
YES_NO = ("yes", "no")
FAILOVER = Param(
    "failover",
    'where calls go when nothing else takes them: "TYPE DESTINATION" in quotes, or none',
)
STATUS = Param("status", "on or off", ON_OFF)


def _name(what: str) -> Param:
    return Param(
        "name", f"the {what}'s name (letters, digits, - _ .)", required=True, positional=True
    )


IVR_PARAMS = (
    ACCOUNT,
    Param("greeting", "welcome greeting: a recording of the account"),
    Param("invalid", "invalid-choice message: a recording"),
    Param("exit", "exit message (played before the failover): a recording"),
    Param("timeout", "seconds to wait for a digit, 1-60", integer=True),
    Param("retries", "invalid tries before the failover, 1-10", integer=True),
    Param("direct-dial", "callers may dial an extension of the account", YES_NO),
    Param("cid-prefix", 'put before the caller-id name, e.g. "Sales: "'),
    Param("ringback", f"while transferring: a recording or {', '.join(ivrs.RINGBACK_TONES)}"),
    FAILOVER,
    STATUS,
)
TC_PARAMS = (ACCOUNT, FAILOVER, STATUS)
CONFERENCE_PARAMS = (
    ACCOUNT,
    Param("greeting", "played to each caller on joining: a recording"),
    Param("profile", "a conference profile of the account, or default"),
    Param("pin", "3 to 16 digits callers must enter, or none"),
    STATUS,
)
PROFILE_PARAMS = tuple(Param(name, help_) for name, help_ in conferences.PARAMS.items())

FORM_USAGE = {
    IVR_ADD: 'c2 ivr add NAME [account:N] [greeting:REC] [timeout:N] [failover:"TYPE DEST"] ...,'
    " then `c2 ivr option NAME set DIGIT TYPE DESTINATION`",
    TC_ADD: 'c2 timecondition add NAME [account:N] [failover:"TYPE DEST"], then '
    f"`c2 timecondition row NAME add {tcs.ROW_USAGE}`",
    CONFERENCE_ADD: "c2 conference add NAME [account:N] [greeting:REC] [profile:NAME] [pin:DIGITS]",
    RECORDING_ADD: "recordings are uploaded in Slack (`/c2 recording add` opens a form for the "
    "WAV file) or recorded by dialling 1800 from a device",
}
FORM_USAGE |= {
    IVR_EDIT: "c2 ivr edit NAME SETTING:VALUE ... (see `c2 ivr help`)",
    TC_EDIT: 'c2 timecondition edit NAME failover:"TYPE DEST" status:on|off, and '
    "`c2 timecondition row NAME add|remove ...` for rows",
    CONFERENCE_EDIT: "c2 conference edit NAME SETTING:VALUE ... (see `c2 conference help`)",
}


@dataclass(frozen=True)
class RecordingPlayed(Reply):
    """`recording play`'s reply, plus the file, for doors that can hand the sound over."""

    path: str = ""
    filename: str = ""


def _values(inv: Invocation, *names: str) -> dict[str, str | None]:
    return {name.replace("-", "_"): inv.get(name) for name in names}


def _edit_form(form: str, initial: dict[str, str]) -> OpenForm:
    return OpenForm(form=form, usage=FORM_USAGE[form], initial=initial)


# --- IVRs -----------------------------------------------------------------------------------------


def _ivr_changes(inv: Invocation) -> ivrs.IvrChanges:
    names = ("greeting", "invalid", "exit", "timeout", "retries", "direct-dial", "cid-prefix")
    return ivrs.IvrChanges(
        **_values(inv, *names, "ringback", "failover", "status"),
    )


async def _ivr_add(ctx: Context, inv: Invocation) -> Result:
    return await ivrs.add_ivr(ctx, inv.need("name"), inv.get("account"), _ivr_changes(inv))


async def _ivr_edit(ctx: Context, inv: Invocation) -> Result:
    changes = _ivr_changes(inv)
    if not changes.named():
        return _edit_form(
            IVR_EDIT, await ivrs.form_values(ctx, inv.need("name"), inv.get("account"))
        )
    return await ivrs.edit_ivr(ctx, inv.need("name"), inv.get("account"), changes)


async def _ivr_list(ctx: Context, inv: Invocation) -> Result:
    return await ivrs.list_ivrs(ctx, inv.get("account"))


async def _ivr_show(ctx: Context, inv: Invocation) -> Result:
    return await ivrs.show_ivr(ctx, inv.need("name"), inv.get("account"))


async def _ivr_remove(ctx: Context, inv: Invocation) -> Result:
    return await ivrs.remove_ivr(ctx, inv.need("name"), inv.get("account"))


async def _ivr_option(ctx: Context, inv: Invocation) -> Result:
    name, account, digit = inv.need("name"), inv.get("account"), inv.need("digit")
    if inv.need("set|remove") == "remove":
        return await ivrs.remove_option(ctx, name, account, digit)
    return await ivrs.set_option(
        ctx, name, account, digit, inv.get("type") or "", inv.get("destination") or ""
    )


IVR = Command(
    "c2 ivr",
    "IVRs (voice menus): greeting, digits 0-9 to any destination, failover",
    (
        Verb(
            "add",
            "add an IVR (in Slack, with no words: a form with its options)",
            _ivr_add,
            params=(_name("IVR"), *IVR_PARAMS),
            form=IVR_ADD,
        ),
        Verb("list", "IVRs you may see", _ivr_list, params=(ACCOUNT,)),
        Verb(
            "show",
            "an IVR, its options and what reaches it",
            _ivr_show,
            params=(_name("IVR"), ACCOUNT),
        ),
        Verb(
            "edit",
            "change an IVR's settings (in Slack, with only the name: a form)",
            _ivr_edit,
            params=(_name("IVR"), *IVR_PARAMS),
        ),
        Verb(
            "remove", "remove an IVR nothing leads to", _ivr_remove, params=(_name("IVR"), ACCOUNT)
        ),
        Verb(
            "option",
            "set or remove what a digit does",
            _ivr_option,
            params=(
                _name("IVR"),
                Param(
                    "set|remove", "set or remove", ("set", "remove"), required=True, positional=True
                ),
                Param("digit", "0 to 9", required=True, positional=True),
                Param("type", f"where the digit leads: {describe_types()}", positional=True),
                Param("destination", "the device(s), number or object's name", positional=True),
                ACCOUNT,
            ),
        ),
    ),
    examples=(
        'c2 ivr add main account:1001 greeting:welcome timeout:8 failover:"voicemail 1001-100"',
        "c2 ivr option main set 1 ringgroup sales",
        "c2 ivr option main set 9 ivr support",
        "c2 ivr option main remove 1",
    ),
)


# --- time conditions ------------------------------------------------------------------------------


def _tc_changes(inv: Invocation) -> tcs.TcChanges:
    return tcs.TcChanges(failover=inv.get("failover"), status=inv.get("status"))


async def _tc_add(ctx: Context, inv: Invocation) -> Result:
    return await tcs.add_tc(ctx, inv.need("name"), inv.get("account"), _tc_changes(inv))


async def _tc_edit(ctx: Context, inv: Invocation) -> Result:
    changes = _tc_changes(inv)
    if not changes.named():
        return _edit_form(TC_EDIT, await tcs.form_values(ctx, inv.need("name"), inv.get("account")))
    return await tcs.edit_tc(ctx, inv.need("name"), inv.get("account"), changes)


async def _tc_list(ctx: Context, inv: Invocation) -> Result:
    return await tcs.list_tcs(ctx, inv.get("account"))


async def _tc_show(ctx: Context, inv: Invocation) -> Result:
    return await tcs.show_tc(ctx, inv.need("name"), inv.get("account"))


async def _tc_remove(ctx: Context, inv: Invocation) -> Result:
    return await tcs.remove_tc(ctx, inv.need("name"), inv.get("account"))


async def _tc_row(ctx: Context, inv: Invocation) -> Result:
    name, account, words = inv.need("name"), inv.get("account"), inv.need("row")
    if inv.need("add|remove") == "remove":
        return await tcs.remove_row(ctx, name, account, words)
    return await tcs.add_row(ctx, name, account, words)


async def _tc_force(ctx: Context, inv: Invocation) -> Result:
    return await tcs.force_tc(ctx, inv.need("name"), inv.get("account"), inv.need("force"))


TC_NAME = _name("time condition")
TIMECONDITION = Command(
    "c2 timecondition",
    "time conditions: rows of times (and holidays) that route calls, and a failover",
    (
        Verb(
            "add",
            "add a time condition (in Slack, with no words: a form with its rows)",
            _tc_add,
            params=(TC_NAME, *TC_PARAMS),
            form=TC_ADD,
        ),
        Verb(
            "list",
            "time conditions, where calls go now, and overrides",
            _tc_list,
            params=(ACCOUNT,),
        ),
        Verb(
            "show",
            "a time condition, its rows and its state now",
            _tc_show,
            params=(TC_NAME, ACCOUNT),
        ),
        Verb(
            "edit",
            "change the failover or status (in Slack, with only the name: a form)",
            _tc_edit,
            params=(TC_NAME, *TC_PARAMS),
        ),
        Verb(
            "remove",
            "remove a time condition nothing leads to",
            _tc_remove,
            params=(TC_NAME, ACCOUNT),
        ),
        Verb(
            "row",
            f"add a row ({tcs.ROW_USAGE}; the lowest matching priority wins) or remove row N",
            _tc_row,
            params=(
                TC_NAME,
                Param(
                    "add|remove", "add or remove", ("add", "remove"), required=True, positional=True
                ),
                ACCOUNT,
            ),
            rest="row",
        ),
    ),
    examples=(
        'c2 timecondition add office account:1001 failover:"voicemail 1001-100"',
        "c2 timecondition row office add 09:00-17:30 days:mon-fri priority:1 ringgroup sales",
        "c2 timecondition row office add holiday country:NL priority:0 playback closed-msg",
        "c2 timecondition row office remove 2",
    ),
)

ROUTE_TC = Command(
    "route tc",
    "time conditions now, and the override (force open or closed until lifted)",
    (
        Verb(
            "list",
            "each time condition, where calls go now, and any override",
            _tc_list,
            params=(ACCOUNT,),
        ),
        Verb(
            "show",
            "a time condition, its rows and its state now",
            _tc_show,
            params=(TC_NAME, ACCOUNT),
        ),
        Verb(
            "force",
            "override the clock: open, closed, or auto to follow the clock again",
            _tc_force,
            params=(
                TC_NAME,
                Param("force", "open, closed or auto", tcs.FORCES, required=True, positional=True),
                ACCOUNT,
            ),
        ),
    ),
    examples=("route tc list", "route tc force office closed", "route tc force office auto"),
)


# --- conferences and their profiles ---------------------------------------------------------------


def _conference_changes(inv: Invocation) -> conferences.ConferenceChanges:
    return conferences.ConferenceChanges(**_values(inv, "greeting", "profile", "pin", "status"))


async def _conference_add(ctx: Context, inv: Invocation) -> Result:
    changes = _conference_changes(inv)
    return await conferences.add_conference(ctx, inv.need("name"), inv.get("account"), changes)


async def _conference_edit(ctx: Context, inv: Invocation) -> Result:
    name, account, changes = inv.need("name"), inv.get("account"), _conference_changes(inv)
    if not changes.named():
        initial = await conferences.conference_form_values(ctx, name, account)
        return _edit_form(CONFERENCE_EDIT, initial)
    return await conferences.edit_conference(ctx, name, account, changes)


async def _conference_list(ctx: Context, inv: Invocation) -> Result:
    return await conferences.list_conferences(ctx, inv.get("account"))


async def _conference_show(ctx: Context, inv: Invocation) -> Result:
    return await conferences.show_conference(ctx, inv.need("name"), inv.get("account"))


async def _conference_remove(ctx: Context, inv: Invocation) -> Result:
    return await conferences.remove_conference(ctx, inv.need("name"), inv.get("account"))


CONF_NAME = _name("conference")
CONFERENCE = Command(
    "c2 conference",
    "conferences: greeting, profile, PIN, status",
    (
        Verb(
            "add",
            "add a conference (in Slack, with no words: a form)",
            _conference_add,
            params=(CONF_NAME, *CONFERENCE_PARAMS),
            form=CONFERENCE_ADD,
        ),
        Verb("list", "conferences you may see", _conference_list, params=(ACCOUNT,)),
        Verb("show", "a conference", _conference_show, params=(CONF_NAME, ACCOUNT)),
        Verb(
            "edit",
            "change a conference (in Slack, with only the name: a form)",
            _conference_edit,
            params=(CONF_NAME, *CONFERENCE_PARAMS),
        ),
        Verb(
            "remove",
            "remove a conference nothing leads to",
            _conference_remove,
            params=(CONF_NAME, ACCOUNT),
        ),
    ),
    examples=("c2 conference add team account:1001 pin:4321 greeting:welcome-conf",),
)


def _profile_params(inv: Invocation) -> dict[str, str]:
    return {p.name: inv.need(p.name) for p in PROFILE_PARAMS if inv.get(p.name) is not None}


async def _profile_add(ctx: Context, inv: Invocation) -> Result:
    return await conferences.add_profile(
        ctx, inv.need("name"), inv.get("account"), _profile_params(inv)
    )


async def _profile_edit(ctx: Context, inv: Invocation) -> Result:
    return await conferences.edit_profile(
        ctx, inv.need("name"), inv.get("account"), _profile_params(inv)
    )


async def _profile_list(ctx: Context, inv: Invocation) -> Result:
    return await conferences.list_profiles(ctx, inv.get("account"))


async def _profile_show(ctx: Context, inv: Invocation) -> Result:
    return await conferences.show_profile(ctx, inv.need("name"), inv.get("account"))


async def _profile_remove(ctx: Context, inv: Invocation) -> Result:
    return await conferences.remove_profile(ctx, inv.need("name"), inv.get("account"))


async def _profile_control(ctx: Context, inv: Invocation) -> Result:
    name, account = inv.need("name"), inv.get("account")
    digits, _, action = inv.need("control").partition(" ")
    if inv.need("set|remove") == "remove":
        if action.strip():
            raise Invalid(f"`control {name} remove` takes the digits only (got {action!r} too).")
        return await conferences.remove_control(ctx, name, account, digits)
    if not action.strip():
        raise Invalid(
            f"Say what pressing {digits} does, e.g. `control {name} set {digits} mute`.",
            {"action": "missing"},
        )
    return await conferences.set_control(ctx, name, account, digits, action)


PROFILE_NAME = _name("conference profile")
CONFPROFILE = Command(
    "c2 confprofile",
    "conference profiles: mod_conference sounds and parameters, and caller controls (digits)",
    (
        Verb(
            "add",
            "add a profile (it starts with mod_conference's default controls)",
            _profile_add,
            params=(PROFILE_NAME, ACCOUNT, *PROFILE_PARAMS),
        ),
        Verb("list", "conference profiles you may see", _profile_list, params=(ACCOUNT,)),
        Verb(
            "show",
            "a profile: parameters, controls, conferences using it",
            _profile_show,
            params=(PROFILE_NAME, ACCOUNT),
        ),
        Verb(
            "edit",
            "change parameters (NAME:none goes back to the switch's default)",
            _profile_edit,
            params=(PROFILE_NAME, ACCOUNT, *PROFILE_PARAMS),
        ),
        Verb(
            "remove",
            "remove a profile no conference uses",
            _profile_remove,
            params=(PROFILE_NAME, ACCOUNT),
        ),
        Verb(
            "control",
            "set what digits do (mute, deaf mute, energy up|down|equal, vol talk up|down|zero, "
            "vol listen up|down|zero, hangup) or remove them",
            _profile_control,
            params=(
                PROFILE_NAME,
                Param(
                    "set|remove", "set or remove", ("set", "remove"), required=True, positional=True
                ),
                ACCOUNT,
            ),
            rest="control",
        ),
    ),
    examples=(
        "c2 confprofile add quiet account:1001 enter-sound:chime max-members:20 moh-sound:hold",
        "c2 confprofile control quiet set 0 mute",
        "c2 confprofile control quiet set 3 vol talk up",
        "c2 confprofile control quiet remove 0",
    ),
)


# --- recordings -----------------------------------------------------------------------------------


async def _recording_add(ctx: Context, inv: Invocation) -> Result:
    raise Invalid(
        "A recording is a WAV file: upload it in Slack with `/c2 recording add` (a form), or "
        "dial 1800 from a device and speak after the tone."
    )


async def _recording_list(ctx: Context, inv: Invocation) -> Result:
    return await recordings.list_recordings(ctx, inv.get("account"))


async def _recording_show(ctx: Context, inv: Invocation) -> Result:
    return await recordings.show_recording(ctx, inv.need("name"), inv.get("account"))


async def _recording_play(ctx: Context, inv: Invocation) -> Result:
    found = await recordings.recording_file(ctx, inv.need("name"), inv.get("account"))
    reply = found.reply
    return RecordingPlayed(
        title=reply.title,
        text="In Slack the file follows in a direct message.",
        fields=reply.fields,
        path=str(found.path),
        filename=found.filename,
    )


async def _recording_remove(ctx: Context, inv: Invocation) -> Result:
    return await recordings.remove_recording(ctx, inv.need("name"), inv.get("account"))


REC_NAME = _name("recording")
RECORDING = Command(
    "c2 recording",
    "recordings: greetings, announcements, music on hold (16-bit mono WAV, 8 or 16 kHz)",
    (
        Verb(
            "add",
            "upload a WAV (in Slack: a form with the file), or dial 1800 from a device",
            _recording_add,
            params=(REC_NAME, ACCOUNT),
            form=RECORDING_ADD,
        ),
        Verb("list", "recordings you may see", _recording_list, params=(ACCOUNT,)),
        Verb("show", "a recording and what plays it", _recording_show, params=(REC_NAME, ACCOUNT)),
        Verb(
            "play",
            "a recording's file (in Slack: sent to you as a message)",
            _recording_play,
            params=(REC_NAME, ACCOUNT),
        ),
        Verb(
            "remove",
            "remove a recording nothing plays",
            _recording_remove,
            params=(REC_NAME, ACCOUNT),
        ),
    ),
    examples=("c2 recording list account:1001", "c2 recording play welcome"),
)

C2_OBJECTS: tuple[Command, ...] = (IVR, TIMECONDITION, CONFERENCE, CONFPROFILE, RECORDING)
ROUTE_OBJECTS: tuple[Command, ...] = (ROUTE_TC,)
READ_ONLY_VERBS: frozenset[str] = frozenset({"play"})
