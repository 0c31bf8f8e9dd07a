"""`/c2 device|did|ringgroup|queue` and `/route did`: the words of SIP devices, numbers, ring
groups and queues, each verb one call into its handler.

`add` with no words opens a form in Slack (text doors explain the one-line form); `edit NAME`
with nothing to change opens the form filled in with the object as it is.
"""

from __future__ import annotations

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import devices, dids, queues, ringgroups
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import DID_TYPES
from c2bot.handlers.errors import Invalid
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import Channel

DEVICE_ADD, DEVICE_EDIT = "device_add", "device_edit"
RINGGROUP_ADD, RINGGROUP_EDIT = "ringgroup_add", "ringgroup_edit"
QUEUE_ADD, QUEUE_EDIT = "queue_add", "queue_edit"

ACCOUNT = Param("account", "account number (resellers and staff; found by name otherwise)")
ON_OFF = ("on", "off")
YES_NO = ("yes", "no")
STATUS = Param("status", "on (in service) or off", ON_OFF)
NUMBER = Param("number", "the number, e.g. +31201234567", required=True, positional=True)
DEVICE = Param("name", "the device's user name, e.g. 1001-100", required=True, positional=True)


def _name(what: str) -> Param:
    return Param(
        "name", f"the {what}'s name (letters, digits, - _ .)", required=True, positional=True
    )


def _yes(value: str | None) -> bool | None:
    return None if value is None else value in ("on", "yes")


def _seconds(inv: Invocation, name: str) -> int | None:
    value = inv.get(name)
    return None if value is None else int(value)


def _list(value: str | None) -> tuple[str, ...] | None:
    """`a,b, c` -> ("a", "b", "c"); `none` -> () ; absent -> None."""
    if value is None:
        return None
    words = [word.strip() for word in value.split(",")]
    return () if value.strip().lower() in ("", "none") else tuple(w for w in words if w)


# --- SIP devices -------------------------------------------------------------------------------

DEVICE_FIELDS = (
    Param("caller", "the number the device calls out with: one of the account's numbers"),
    Param("caller-name", 'the name it calls out with, e.g. "Acme Sales"'),
    Param("voicemail", "voicemail box on or off (on needs a pin)", ON_OFF),
    Param("pin", "voicemail PIN, 4 to 10 digits"),
    Param("vm-email", "mail new voicemail messages to this address (none: do not)"),
    Param("codecs", f"codecs in order of preference, e.g. PCMA,G722 ({', '.join(devices.CODECS)})"),
    Param("record", "record the device's calls", ON_OFF),
    STATUS,
)
DEVICE_ADD_USAGE = (
    'c2 device add EXTENSION [account:N] [caller:NUMBER] [caller-name:"..."] '
    "[voicemail:on pin:NNNN] [vm-email:EMAIL] [codecs:PCMA,G722] [record:on|off]"
)


def _device_fields(inv: Invocation) -> devices.DeviceFields:
    vm_email = inv.get("vm-email")
    return devices.DeviceFields(
        password=inv.get("password"),
        caller_number=inv.get("caller"),
        caller_name=inv.get("caller-name"),
        voicemail=_yes(inv.get("voicemail")),
        voicemail_pin=inv.get("pin"),
        voicemail_email="" if vm_email and vm_email.lower() == "none" else vm_email,
        codecs=inv.get("codecs"),
        record_calls=_yes(inv.get("record")),
        enabled=_yes(inv.get("status")),
    )


async def _device_add(ctx: Context, inv: Invocation) -> Result:
    request = devices.NewDevice(
        name=inv.need("name"),
        account=inv.get("account"),
        username=inv.get("username"),
        fields=_device_fields(inv),
    )
    made = await devices.add_device(ctx, request)
    # Mail travels and is kept in the clear; other doors answer the asker alone.
    return made.reply(show_password=ctx.channel is not Channel.EMAIL)


async def _device_edit(ctx: Context, inv: Invocation) -> Result:
    fields = _device_fields(inv)
    if fields.empty:
        found = await devices.device_settings(ctx, inv.need("name"))
        initial = {"name": found.username, "account": found.account}
        return OpenForm(DEVICE_EDIT, FORM_USAGE[DEVICE_EDIT], initial)
    return await devices.edit_device(ctx, inv.need("name"), fields)


async def _device_list(ctx: Context, inv: Invocation) -> Result:
    return await devices.list_devices(ctx, inv.get("account"))


async def _device_show(ctx: Context, inv: Invocation) -> Result:
    return await devices.show_device(ctx, inv.need("name"))


async def _device_remove(ctx: Context, inv: Invocation) -> Result:
    return await devices.remove_device(ctx, inv.need("name"))


async def _device_password(ctx: Context, inv: Invocation) -> Result:
    return await devices.device_password(ctx, inv.need("name"), reset="reset" in inv.flags)


DEVICE_COMMAND = Command(
    "c2 device",
    "SIP devices (phones): add, settings for the phone, password, registration",
    (
        Verb(
            "add",
            "add a device; its password is made for you and shown once (Slack: a form)",
            _device_add,
            form=DEVICE_ADD,
            params=(
                Param(
                    "name",
                    "the extension, 2 to 6 digits (the user name becomes ACCOUNT-EXTENSION), "
                    "or ACCOUNT-EXTENSION",
                    required=True,
                    positional=True,
                ),
                ACCOUNT,
                Param("username", "a user name of your own instead of ACCOUNT-EXTENSION"),
                Param("password", "a password of your own, 12+ characters (better: leave it out)"),
                *DEVICE_FIELDS,
            ),
        ),
        Verb("list", "devices you may see", _device_list, params=(ACCOUNT,)),
        Verb(
            "show",
            "a device, what to enter in the phone's web page, and whether it is registered",
            _device_show,
            params=(DEVICE,),
        ),
        Verb(
            "edit",
            "change a device's settings (with only the name: a form filled in)",
            _device_edit,
            form=DEVICE_EDIT,
            params=(DEVICE, *DEVICE_FIELDS),
        ),
        Verb(
            "remove",
            "remove a device (refused while calls are sent to it)",
            _device_remove,
            params=(DEVICE,),
        ),
        Verb(
            "password",
            "the device's password again, to you alone; with reset, a new one",
            _device_password,
            params=(DEVICE,),
            flags=(("reset", "make a new password (the phone needs it before it registers)"),),
        ),
    ),
    examples=(
        'c2 device add 100 account:1001 caller:+31201234500 caller-name:"Acme Sales"',
        "c2 device show 1001-100",
        "c2 device edit 1001-100 voicemail:on pin:4821 vm-email:jan@acme.nl",
        "c2 device password 1001-100 reset",
    ),
)


# --- DIDs --------------------------------------------------------------------------------------


async def _did_add(ctx: Context, inv: Invocation) -> Result:
    return await dids.add_did(
        ctx, inv.need("number"), inv.get("account"), inv.get("setup"), inv.get("monthly")
    )


async def _did_edit(ctx: Context, inv: Invocation) -> Result:
    kind, destination = inv.get("type"), inv.get("destination")
    if (kind is None) != (destination is None):
        raise Invalid(
            "Give type: and destination: together, e.g. type:pstn destination:+31612345678.",
            {"destination" if kind else "type": "missing"},
        )
    forwarding = dids.Forwarding(kind, destination) if kind and destination else None
    return await dids.edit_did(ctx, inv.need("number"), inv.get("account"), forwarding)


async def _did_list(ctx: Context, inv: Invocation) -> Result:
    return await dids.list_dids(ctx, inv.get("account"))


async def _did_show(ctx: Context, inv: Invocation) -> Result:
    return await dids.show_did(ctx, inv.need("number"))


async def _did_remove(ctx: Context, inv: Invocation) -> Result:
    return await dids.remove_did(ctx, inv.need("number"))


async def _did_set(ctx: Context, inv: Invocation) -> Result:
    forwarding = dids.Forwarding(inv.need("type"), inv.need("destination"))
    return await dids.set_forwarding(ctx, inv.need("number"), forwarding, inv.get("account"))


FORWARD_TYPES = tuple(DID_TYPES)
TYPE_HELP = "how calls are forwarded:" + "".join(
    f"\n        {t}: {DID_TYPES[t]}" for t in DID_TYPES
)
DID_LIST = Verb(
    "list", "numbers you may see and where their calls go", _did_list, params=(ACCOUNT,)
)
DID_SHOW = Verb("show", "one number and where its calls go, in words", _did_show, params=(NUMBER,))
DID_COMMAND = Command(
    "c2 did",
    "phone numbers (DIDs): support adds and moves them; where calls go: `/route did set`",
    (
        Verb(
            "add",
            "give a number from the carrier to an account (staff)",
            _did_add,
            params=(
                NUMBER,
                Param("account", "the account that gets it", required=True),
                Param("setup", "one-off fee on its first invoice, e.g. 5.00 (default 0)"),
                Param("monthly", "fee invoiced every month, e.g. 1.50 (default 0)"),
            ),
        ),
        DID_LIST,
        DID_SHOW,
        Verb(
            "edit",
            "move a number to another account (staff), or set where its calls go",
            _did_edit,
            params=(
                NUMBER,
                Param("account", "move it to this account (staff)"),
                Param("type", "forwarding type", FORWARD_TYPES),
                Param("destination", "where to, as for `route did set`"),
            ),
        ),
        Verb("remove", "give a number back to the carrier (staff)", _did_remove, params=(NUMBER,)),
    ),
    examples=("c2 did add +31201234567 account:1001", "c2 did edit +31201234567 account:1002"),
)
ROUTE_DID = Command(
    name="route did",
    summary="phone numbers (DIDs) and where their calls go",
    verbs=(
        DID_LIST,
        DID_SHOW,
        Verb(
            "set",
            "forward a number: where its calls go next",
            _did_set,
            params=(
                NUMBER,
                Param("type", TYPE_HELP, FORWARD_TYPES, required=True, positional=True),
                Param(
                    "destination",
                    'where to; in "..." if it has spaces (local: devices, `a,b` ring together, '
                    "`a|b` in turn)",
                    required=True,
                    positional=True,
                ),
                Param("account", "staff: the account a number new to the platform goes to"),
            ),
        ),
    ),
    examples=(
        "route did set +31201234567 local 1001-100",
        'route did set +31201234567 local "1001-100|1001-101"',
        "route did set +31201234567 ringgroup sales",
        "route did set +31201234567 pstn +31612345678",
        "route did set +31201234567 ip pbx.acme.nl:5060",
        "route did set +31201234567 foip fax@acme.nl",
        "route did list account:1001",
    ),
)


# --- ring groups -------------------------------------------------------------------------------

RINGGROUP_FIELDS = (
    ACCOUNT,
    Param(
        "strategy",
        "simultaneous (all ring at once) or sequence (one after another)",
        tuple(ringgroups.STRATEGIES),
    ),
    Param(
        "members",
        "the whole member list, comma-separated devices or numbers (none: empty); "
        "one at a time: `c2 ringgroup member NAME add ...`",
    ),
    Param("announcement", "played to the caller first: a recording (none: nothing)"),
    Param(
        "ringback",
        f"what the caller hears: a recording or {', '.join(ringgroups.RINGBACK_TONES)}",
    ),
    Param("cid-name", 'put before the caller-id name, e.g. "Sales: "'),
    Param("cid-number", "put before the caller-id number, digits"),
    Param(
        "record", "call recording: device (follow it), on or off", tuple(ringgroups.RECORDING_MODES)
    ),
    Param("skip-busy", "do not ring members already on a call", YES_NO),
    Param("noanswer", 'where calls go when nobody answers: "TYPE DESTINATION" in quotes, or none'),
    STATUS,
)


def _ringgroup_fields(inv: Invocation) -> ringgroups.RingGroupFields:
    members = _list(inv.get("members"))
    skip = inv.get("skip-busy")
    return ringgroups.RingGroupFields(
        strategy=inv.get("strategy"),
        members=None if members is None else tuple(ringgroups.Member(m) for m in members),
        announcement=inv.get("announcement"),
        ringback=inv.get("ringback"),
        cid_name_prefix=inv.get("cid-name"),
        cid_number_prefix=inv.get("cid-number"),
        recording=inv.get("record"),
        skip_busy=None if skip is None else skip == "yes",
        noanswer=inv.get("noanswer"),
        enabled=_yes(inv.get("status")),
    )


async def _ringgroup_add(ctx: Context, inv: Invocation) -> Result:
    fields = _ringgroup_fields(inv)
    return await ringgroups.add_ring_group(ctx, inv.need("name"), inv.get("account"), fields)


async def _ringgroup_edit(ctx: Context, inv: Invocation) -> Result:
    fields = _ringgroup_fields(inv)
    name, account = inv.need("name"), inv.get("account")
    if fields.empty:
        found = await ringgroups.ring_group_settings(ctx, name, account)
        initial = {"name": found.name, "account": found.account}
        return OpenForm(RINGGROUP_EDIT, FORM_USAGE[RINGGROUP_EDIT], initial)
    return await ringgroups.edit_ring_group(ctx, name, account, fields)


async def _ringgroup_list(ctx: Context, inv: Invocation) -> Result:
    return await ringgroups.list_ring_groups(ctx, inv.get("account"))


async def _ringgroup_show(ctx: Context, inv: Invocation) -> Result:
    return await ringgroups.show_ring_group(ctx, inv.need("name"), inv.get("account"))


async def _ringgroup_remove(ctx: Context, inv: Invocation) -> Result:
    return await ringgroups.remove_ring_group(ctx, inv.need("name"), inv.get("account"))


async def _ringgroup_member(ctx: Context, inv: Invocation) -> Result:
    change = ringgroups.MemberChange(
        group=inv.need("name"),
        target=inv.need("target"),
        account=inv.get("account"),
        delay=_seconds(inv, "delay"),
        timeout=_seconds(inv, "timeout"),
    )
    if inv.need("action") == "remove":
        return await ringgroups.remove_member(ctx, change)
    return await ringgroups.add_member(ctx, change)


RINGGROUP_COMMAND = Command(
    "c2 ringgroup",
    "ring groups: up to 10 devices or numbers rung together or in turn",
    (
        Verb(
            "add",
            "add a ring group (Slack: a form)",
            _ringgroup_add,
            form=RINGGROUP_ADD,
            params=(_name("ring group"), *RINGGROUP_FIELDS),
        ),
        Verb("list", "ring groups you may see", _ringgroup_list, params=(ACCOUNT,)),
        Verb(
            "show",
            "a ring group and its members",
            _ringgroup_show,
            params=(_name("ring group"), ACCOUNT),
        ),
        Verb(
            "edit",
            "change a ring group (with only the name: a form filled in)",
            _ringgroup_edit,
            form=RINGGROUP_EDIT,
            params=(_name("ring group"), *RINGGROUP_FIELDS),
        ),
        Verb(
            "remove",
            "remove a ring group (refused while calls are sent to it)",
            _ringgroup_remove,
            params=(_name("ring group"), ACCOUNT),
        ),
        Verb(
            "member",
            "add a member (or change its delay and timeout), or remove one",
            _ringgroup_member,
            params=(
                _name("ring group"),
                Param("action", "add or remove", ("add", "remove"), required=True, positional=True),
                Param(
                    "target",
                    "a device (1001-101 or its extension) or a phone number",
                    required=True,
                    positional=True,
                ),
                Param("delay", "seconds before it starts ringing, 0-300", integer=True),
                Param("timeout", "seconds it rings, 5-300", integer=True),
                ACCOUNT,
            ),
        ),
    ),
    examples=(
        "c2 ringgroup add sales account:1001 strategy:sequence members:1001-100,1001-101",
        "c2 ringgroup member sales add 1001-102 delay:5 timeout:20",
        "c2 ringgroup member sales remove 1001-101",
        'c2 ringgroup edit sales noanswer:"voicemail 1001-100"',
    ),
)


# --- queues ------------------------------------------------------------------------------------

QUEUE_FIELDS = (
    ACCOUNT,
    Param("strategy", "how agents are picked (mod_callcenter)", tuple(queues.STRATEGIES)),
    Param(
        "agents",
        "the whole agent list, comma-separated devices or numbers (none: empty); "
        "one at a time: `c2 queue agent NAME add ...`",
    ),
    Param("moh", "music on hold: a recording (default: the switch's music)"),
    Param("agent-tone", "played to the agent on answering: a recording or a tone"),
    Param("customer-tone", "played to the caller when an agent answers: a recording or a tone"),
    Param("timeout", "longest wait in seconds before the failover, 10-7200", integer=True),
    Param("failover", 'where calls go after the timeout: "TYPE DESTINATION" in quotes, or none'),
    STATUS,
)


def _queue_fields(inv: Invocation) -> queues.QueueFields:
    return queues.QueueFields(
        strategy=inv.get("strategy"),
        agents=_list(inv.get("agents")),
        moh=inv.get("moh"),
        agent_tone=inv.get("agent-tone"),
        customer_tone=inv.get("customer-tone"),
        timeout=_seconds(inv, "timeout"),
        failover=inv.get("failover"),
        enabled=_yes(inv.get("status")),
    )


async def _queue_add(ctx: Context, inv: Invocation) -> Result:
    return await queues.add_queue(ctx, inv.need("name"), inv.get("account"), _queue_fields(inv))


async def _queue_edit(ctx: Context, inv: Invocation) -> Result:
    fields = _queue_fields(inv)
    name, account = inv.need("name"), inv.get("account")
    if fields.empty:
        found = await queues.queue_settings(ctx, name, account)
        initial = {"name": found.name, "account": found.account}
        return OpenForm(QUEUE_EDIT, FORM_USAGE[QUEUE_EDIT], initial)
    return await queues.edit_queue(ctx, name, account, fields)


async def _queue_list(ctx: Context, inv: Invocation) -> Result:
    return await queues.list_queues(ctx, inv.get("account"))


async def _queue_show(ctx: Context, inv: Invocation) -> Result:
    return await queues.show_queue(ctx, inv.need("name"), inv.get("account"))


async def _queue_remove(ctx: Context, inv: Invocation) -> Result:
    return await queues.remove_queue(ctx, inv.need("name"), inv.get("account"))


async def _queue_agent(ctx: Context, inv: Invocation) -> Result:
    change = queues.AgentChange(inv.need("name"), inv.need("target"), inv.get("account"))
    if inv.need("action") == "remove":
        return await queues.remove_agent(ctx, change)
    return await queues.add_agent(ctx, change)


QUEUE_COMMAND = Command(
    "c2 queue",
    "call queues: callers wait with music while agents are rung",
    (
        Verb(
            "add",
            "add a queue (Slack: a form)",
            _queue_add,
            form=QUEUE_ADD,
            params=(_name("queue"), *QUEUE_FIELDS),
        ),
        Verb("list", "queues you may see", _queue_list, params=(ACCOUNT,)),
        Verb("show", "a queue and its agents", _queue_show, params=(_name("queue"), ACCOUNT)),
        Verb(
            "edit",
            "change a queue (with only the name: a form filled in)",
            _queue_edit,
            form=QUEUE_EDIT,
            params=(_name("queue"), *QUEUE_FIELDS),
        ),
        Verb(
            "remove",
            "remove a queue (refused while calls are sent to it)",
            _queue_remove,
            params=(_name("queue"), ACCOUNT),
        ),
        Verb(
            "agent",
            "add or remove an agent",
            _queue_agent,
            params=(
                _name("queue"),
                Param("action", "add or remove", ("add", "remove"), required=True, positional=True),
                Param(
                    "target",
                    "a device (1001-102 or its extension) or a phone number",
                    required=True,
                    positional=True,
                ),
                ACCOUNT,
            ),
        ),
    ),
    examples=(
        "c2 queue add support account:1001 strategy:ring-all agents:1001-100,1001-101",
        "c2 queue agent support add 1001-102",
        'c2 queue edit support timeout:120 failover:"voicemail 1001-100"',
    ),
)


FORM_USAGE = {
    DEVICE_ADD: DEVICE_ADD_USAGE,
    DEVICE_EDIT: "c2 device edit NAME SETTING:VALUE ... (see `c2 device help`)",
    RINGGROUP_ADD: "c2 ringgroup add NAME [account:N] [strategy:simultaneous|sequence] "
    '[members:DEVICE,NUMBER,...] [noanswer:"TYPE DEST"] ..., then '
    "`c2 ringgroup member NAME add DEVICE delay:N timeout:N`",
    RINGGROUP_EDIT: "c2 ringgroup edit NAME SETTING:VALUE ... (see `c2 ringgroup help`)",
    QUEUE_ADD: "c2 queue add NAME [account:N] [strategy:S] [agents:DEVICE,...] "
    '[timeout:N] [failover:"TYPE DEST"] ..., then `c2 queue agent NAME add DEVICE`',
    QUEUE_EDIT: "c2 queue edit NAME SETTING:VALUE ... (see `c2 queue help`)",
}
C2_OBJECTS: tuple[Command, ...] = (DEVICE_COMMAND, DID_COMMAND, RINGGROUP_COMMAND, QUEUE_COMMAND)
ROUTE_OBJECTS: tuple[Command, ...] = (ROUTE_DID,)
# Reading verbs beyond list and show (an email asking only these runs without a confirmation).
# `password` is not one: `password NAME reset` changes the device.
READ_ONLY_VERBS: frozenset[str] = frozenset()
