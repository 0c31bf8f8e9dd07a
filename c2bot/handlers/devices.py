"""SIP devices: the phones of an account, their passwords, and what to type into them.

A device is known by its username (`1001-100`: account and extension), unique on the platform,
so it can be named without its account. The password is generated unless given, sealed with
C2_SECRET_KEY (FreeSWITCH's directory needs it back for digest authentication), shown once when
made, and again only on request, to the asker alone; never by email, where mail travels and is
kept in the clear.

A device is also a destination (DIDs, ring group members, queue agents, voicemail), so it is
not removed while anything sends calls to it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.accounts import account_by_number, normalise_email, scoped, target_account
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import Destination, device_of, phone_number, references
from c2bot.handlers.errors import Invalid, NotFound, Refusal
from c2bot.handlers.permissions import check_account
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import remember, snapshot
from c2bot.storage.crypto import SecretUnreadable, seal, unseal
from c2bot.storage.models import Account, Channel, Did, SipDevice
from c2bot.switch.calls import Registration, registration
from c2bot.switch.esl import SwitchError, SwitchUnavailable

# FreeSWITCH's names for the codecs a phone may offer (mod_sofia's codec-prefs words).
CODECS = (
    "PCMA",
    "PCMU",
    "G722",
    "G729",
    "OPUS",
    "GSM",
    "iLBC",
    "SPEEX",
    "G726-32",
    "AMR",
    "AMR-WB",
    "H264",
    "VP8",
)
_CODEC_BY_WORD = {codec.lower(): codec for codec in CODECS}
# Extensions a device cannot have: the dialplan answers them itself, or they must reach help.
RESERVED_EXTENSIONS = {
    "1800": "dialled to record a greeting",
    "112": "the emergency number",
    "911": "an emergency number",
    "999": "an emergency number",
}
PASSWORD_LENGTH = 20
PASSWORD_MIN = 12
_ALPHABET = string.ascii_letters + string.digits
_EXTENSION = re.compile(r"^\d{2,6}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")
_PIN = re.compile(r"^\d{4,10}$")
_PASSWORD = re.compile(r"^[!-~]+$")  # printable ASCII, no spaces: phones' web pages take these
CALLER_NAME_MAX = 50
# What the platform's guide tells people to enter in a phone's own web page.
SIP_PORT = "5060"
SIP_TRANSPORT = "UDP"
SERVER_EXPIRES = "3600"
RETRY_COUNTS = "3"
ON_REQUEST = "shown on request: `/c2 device password {name}` (only you see the answer)"


# The extension an account's first device gets (made with the account).
FIRST_EXTENSION = "100"


@dataclass(frozen=True)
class DeviceFields:
    """What add and edit may set; None leaves a field as it is (or at its default when new).

    An empty string clears a text field.
    """

    password: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    voicemail: bool | None = None
    voicemail_pin: str | None = None
    voicemail_email: str | None = None
    codecs: str | None = None
    record_calls: bool | None = None
    enabled: bool | None = None

    @property
    def empty(self) -> bool:
        return all(value is None for value in vars(self).values())


@dataclass(frozen=True)
class NewDevice:
    """`name` is the extension (`100`) or the whole username (`1001-100`)."""

    name: str
    account: str | None = None
    username: str | None = None
    fields: DeviceFields = field(default_factory=DeviceFields)


@dataclass(frozen=True)
class DeviceSettings:
    """A device as its edit form shows it."""

    username: str
    account: str
    extension: str
    caller_number: str
    caller_name: str
    voicemail: bool
    voicemail_pin: str
    voicemail_email: str
    codecs: tuple[str, ...]
    record_calls: bool
    enabled: bool

    @classmethod
    def of(cls, device: SipDevice) -> DeviceSettings:
        return cls(
            username=device.username,
            account=device.account.number,
            extension=device.extension,
            caller_number=device.caller_number,
            caller_name=device.caller_name,
            voicemail=device.voicemail,
            voicemail_pin=device.voicemail_pin,
            voicemail_email=device.voicemail_email,
            codecs=tuple(c for c in device.codecs.split(",") if c),
            record_calls=device.record_calls,
            enabled=device.enabled,
        )


@dataclass(frozen=True)
class DeviceMade:
    """A new device and its password, which the front door shows once, or not at all."""

    username: str
    account: str
    extension: str
    password: str
    password_given: bool
    server: str

    def reply(self, *, show_password: bool) -> Reply:
        if self.password_given:
            shown = "as you gave it"
        elif show_password:
            shown = f"{self.password}  (shown once; later only on request)"
        else:
            shown = ON_REQUEST.format(name=self.username)
        return Reply(
            title=f"SIP device {self.username} added to account {self.account}.",
            fields=(
                ("User name", self.username),
                ("Password", shown),
                ("Extension", self.extension),
                ("Server host", self.server),
            ),
            text=f"Everything to enter in the phone: `/c2 device show {self.username}`.",
        )


# --- lookups other routing handlers share ------------------------------------------------------


def sip_server(ctx: Context, account: Account) -> str:
    """The SIP server host a device of the account registers with (C2_SIP_DOMAIN)."""
    return ctx.settings.sip_domain.replace("{account}", account.number)


async def visible_device(session: AsyncSession, ctx: Context, name: str) -> SipDevice:
    """A device by username, if the actor may act on its account (else it does not exist)."""
    device = await session.scalar(select(SipDevice).where(SipDevice.username == name.strip()))
    if device is None or not await _may(session, ctx, device.account_id):
        raise NotFound(
            f"There is no SIP device {name!r} you may see; `/c2 device list` shows yours."
        )
    return device


async def device_or_number(
    session: AsyncSession, ctx: Context, account: Account, word: str, field: str
) -> str:
    """A ring group member or queue agent: a device of the account (its username), or a phone
    number (E.164). Extensions and usernames that name no device are refused, not dialled."""
    word = word.strip()
    device = await device_of(session, account, word)
    if device is not None:
        return device.username
    no_device = Invalid(
        f"Account {account.number} has no SIP device {word!r}; "
        f"see `/c2 device list account:{account.number}`.",
        {field: f"no device {word}"},
    )
    if _EXTENSION.match(word) or any(c.isalpha() for c in word):
        raise no_device
    try:
        return phone_number(word, ctx.settings.fax_country, field)
    except Invalid:
        if "-" in word:  # more like a mistyped user name (1001-109) than a number
            raise no_device from None
        raise


# --- add, edit, remove -------------------------------------------------------------------------


async def add_device(ctx: Context, request: NewDevice, *, check_only: bool = False) -> DeviceMade:
    """Make a device; with `check_only`, refuse exactly what making it would, and make nothing."""
    async with ctx.sessions() as session:
        account, extension = await _account_and_extension(session, ctx, request)
        username = _username(request, account, extension)
        existing = await session.scalar(select(SipDevice).where(SipDevice.username == username))
        generated = _new_password(ctx, username)
        if existing is not None:
            if _same_request(ctx, existing, account, generated):
                return _made(ctx, existing, account, generated, given=False)
            raise Invalid(f"There is already a SIP device {username}.", {"name": "already exists"})
        taken = await device_of(session, account, extension)
        if taken is not None:
            raise Invalid(
                f"Extension {extension} of account {account.number} is already "
                f"device {taken.username}.",
                {"name": "extension in use"},
            )
        given = request.fields.password
        device = SipDevice(
            account_id=account.id,
            username=username,
            extension=extension,
            password_sealed=seal(ctx.settings, _check_password(given, username) or generated),
        )
        device.account = account
        await _apply(session, ctx, device, account, _without_password(request.fields))
        if check_only:
            return _made(ctx, device, account, "", given=given is not None)
        await store_new_device(session, ctx, device)
        await session.commit()
    return _made(ctx, device, account, given or generated, given=given is not None)


async def store_new_device(session: AsyncSession, ctx: Context, device: SipDevice) -> None:
    """Add a new device in the caller's transaction, in the change log (so undo takes it back)."""
    session.add(device)
    await session.flush()
    await remember(
        session,
        ctx,
        object_type="device",
        key=device.username,
        account_id=device.account_id,
        summary=f"SIP device {device.username} added",
        before=None,
        after=device,
    )


def made(
    ctx: Context, device: SipDevice, account: Account, password: str, *, given: bool
) -> DeviceMade:
    """What a new device's reply says (its password once, unless the asker chose it)."""
    return _made(ctx, device, account, password, given=given)


def new_username(number: str, username: str | None, password: str | None) -> str:
    """The user name a new device of account `number` at extension 100 gets (`username` if
    given), with the password checked by the same rules as `add`; Invalid names the field."""
    account = Account(number=number)
    request = NewDevice(FIRST_EXTENSION, number, username)
    name = _username(request, account, FIRST_EXTENSION)
    _check_password(password, name)
    return name


def new_password(ctx: Context, username: str) -> str:
    return _new_password(ctx, username)


async def edit_device(
    ctx: Context, name: str, fields: DeviceFields, *, check_only: bool = False
) -> Reply:
    """Change what `fields` names; a change that changes nothing is not recorded."""
    async with ctx.sessions() as session:
        device = await visible_device(session, ctx, name)
        before = snapshot(device)
        if fields.password is not None:
            _check_password(fields.password, device.username)
            if fields.password != _password_of(ctx, device):
                device.password_sealed = seal(ctx.settings, fields.password)
        await _apply(session, ctx, device, device.account, _without_password(fields))
        changed = [key for key, value in snapshot(device).items() if before.get(key) != value]
        if check_only or not changed:
            await session.rollback()
            title = "Nothing to change" if not changed else "Would change"
            return Reply(title=f"{title}: SIP device {name}.")
        await session.flush()
        summary = f"SIP device {device.username}: {', '.join(_words(changed))} changed"
        await remember(
            session,
            ctx,
            object_type="device",
            key=device.username,
            account_id=device.account_id,
            summary=summary,
            before=before,
            after=device,
        )
        await session.commit()
        return Reply(title=f"{summary}.", fields=_settings_fields(DeviceSettings.of(device)))


async def remove_device(ctx: Context, name: str) -> Reply:
    async with ctx.sessions() as session:
        device = await visible_device(session, ctx, name)
        used_by = await references(
            session, device.account_id, Destination("local", device.username)
        )
        if used_by:
            raise Invalid(
                f"SIP device {device.username} still gets calls from: {', '.join(used_by)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(device)
        await session.delete(device)
        await session.flush()
        await remember(
            session,
            ctx,
            object_type="device",
            key=device.username,
            account_id=device.account_id,
            summary=f"SIP device {device.username} removed",
            before=before,
            after=None,
        )
        await session.commit()
    return Reply(
        title=f"SIP device {device.username} removed; it can no longer register. "
        "`/route undo` brings it back."
    )


# --- reading -----------------------------------------------------------------------------------


async def list_devices(ctx: Context, account_number: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(SipDevice).order_by(SipDevice.username)
        stmt = await scoped(session, ctx, stmt, SipDevice.account_id, account_number)
        devices = list(await session.scalars(stmt))
    if not devices:
        return Reply(title="No SIP devices.", text="Add one with `/c2 device add EXTENSION`.")
    rows = tuple(
        (
            d.username,
            d.account.number,
            d.extension,
            d.caller_number or "-",
            d.caller_name or "-",
            "on" if d.voicemail else "off",
            "enabled" if d.enabled else "disabled",
        )
        for d in devices
    )
    columns = ("Device", "Account", "Ext", "Caller number", "Caller name", "Voicemail", "Status")
    return Reply(title=f"{len(rows)} SIP device(s)", table=Table(columns, rows))


async def device_settings(ctx: Context, name: str) -> DeviceSettings:
    async with ctx.sessions() as session:
        return DeviceSettings.of(await visible_device(session, ctx, name))


async def show_device(ctx: Context, name: str) -> Reply:
    """The device, what to enter in the phone's own web page, and whether it is registered."""
    async with ctx.sessions() as session:
        device = await visible_device(session, ctx, name)
        settings = DeviceSettings.of(device)
        server = sip_server(ctx, device.account)
    phone = (
        ("Display name", settings.caller_name or settings.extension),
        ("Register name", settings.username),
        ("User name", settings.username),
        ("Password", ON_REQUEST.format(name=settings.username)),
        ("Server host", server),
        ("Server port", SIP_PORT),
        ("Transport", SIP_TRANSPORT),
        ("Server expires", SERVER_EXPIRES),
        ("Retry counts", RETRY_COUNTS),
    )
    live = await _registration_fields(ctx, settings.username, server)
    return Reply(
        title=f"SIP device {settings.username} (account {settings.account})",
        fields=_settings_fields(settings) + phone + live,
        text="Enter the phone settings above in the phone's own web page (SIP account).",
    )


async def device_password(ctx: Context, name: str, *, reset: bool = False) -> Reply:
    """The password again, to the asker alone; or a new one (the phone must get it too)."""
    if ctx.channel is Channel.EMAIL:
        raise Refusal(
            "Passwords are not sent by email: mail travels and is stored in the clear. "
            f"Ask in Slack (only you see the answer) or in `c2bot shell`: "
            f"`c2 device password {name}`."
        )
    async with ctx.sessions() as session:
        device = await visible_device(session, ctx, name)
        if not reset:
            return _password_reply(device.username, _password_of(ctx, device), new=False)
        password = _new_password(ctx, device.username)
        if _readable_password(ctx, device) == password:  # this request, replayed
            return _password_reply(device.username, password, new=True)
        before = snapshot(device)
        device.password_sealed = seal(ctx.settings, password)
        await session.flush()
        await remember(
            session,
            ctx,
            object_type="device",
            key=device.username,
            account_id=device.account_id,
            summary=f"SIP device {device.username}: password reset",
            before=before,
            after=device,
        )
        await session.commit()
    return _password_reply(device.username, password, new=True)


# --- helpers -----------------------------------------------------------------------------------


async def _may(session: AsyncSession, ctx: Context, account_id: int) -> bool:
    try:
        await check_account(session, ctx.actor, account_id)
    except Refusal:
        return False
    return True


async def _account_and_extension(
    session: AsyncSession, ctx: Context, request: NewDevice
) -> tuple[Account, str]:
    """`100` with account:1001 (or the asker's own account), or `1001-100`."""
    name = request.name.strip()
    prefix, dash, extension = name.rpartition("-")
    if not dash:
        extension, prefix = name, ""
    if prefix and request.username:
        raise Invalid(
            "With username: give the extension alone as the name, e.g. 100.", {"name": "extension"}
        )
    if prefix and request.account and prefix != request.account:
        raise Invalid(
            f"{name} belongs to account {prefix}, not {request.account}; "
            f"name the device {request.account}-{extension} or leave account: out.",
            {"name": "another account's name"},
        )
    if prefix:
        account = await account_by_number(session, prefix)
        await check_account(session, ctx.actor, account.id)
    else:
        account = await target_account(session, ctx, request.account, "the device")
    return account, _check_extension(extension)


def _check_extension(extension: str) -> str:
    if not _EXTENSION.match(extension):
        raise Invalid(
            f"Extension {extension!r} must be 2 to 6 digits, e.g. 100.", {"name": "2 to 6 digits"}
        )
    if extension.startswith("0"):
        raise Invalid(
            f"Extension {extension} starts with 0, which dials out; pick one like 100.",
            {"name": "starts with 0"},
        )
    if extension in RESERVED_EXTENSIONS:
        raise Invalid(
            f"Extension {extension} is {RESERVED_EXTENSIONS[extension]}; pick another.",
            {"name": "reserved"},
        )
    return extension


def _username(request: NewDevice, account: Account, extension: str) -> str:
    if not request.username:
        return f"{account.number}-{extension}"
    username = request.username.strip()
    if not _USERNAME.match(username):
        raise Invalid(
            f"User name {username!r} must be 3 to 64 letters, digits, '.', '_' or '-'.",
            {"username": "letters, digits, . _ - only"},
        )
    prefix, dash, tail = username.rpartition("-")
    if dash and _EXTENSION.match(tail) and prefix != account.number:
        # ACCOUNT-EXTENSION is every account's own pattern: not another account's to take.
        raise Invalid(
            f"User name {username} looks like account {prefix}'s extension {tail}; "
            "choose one that does not end in -DIGITS, or leave username: out.",
            {"username": "another account's pattern"},
        )
    return username


def _check_password(password: str | None, username: str) -> str | None:
    if password is None:
        return None
    if len(password) < PASSWORD_MIN or len(password) > 64 or not _PASSWORD.match(password):
        raise Invalid(
            f"A device password is {PASSWORD_MIN} to 64 characters, no spaces; "
            "leave it out and c2bot makes a strong one.",
            {"password": "too weak"},
        )
    if username.lower() in password.lower():
        raise Invalid("The password must not contain the user name.", {"password": "too weak"})
    return password


def _without_password(fields: DeviceFields) -> DeviceFields:
    return DeviceFields(**{**vars(fields), "password": None})


async def _apply(
    session: AsyncSession, ctx: Context, device: SipDevice, account: Account, fields: DeviceFields
) -> None:
    """Set the given fields on the device, each checked; voicemail needs its PIN."""
    if fields.caller_number is not None:
        device.caller_number = await _caller_number(session, ctx, account, fields.caller_number)
    if fields.caller_name is not None:
        device.caller_name = _caller_name(fields.caller_name)
    if fields.voicemail_pin is not None:
        pin = fields.voicemail_pin.strip()
        if pin and not _PIN.match(pin):
            raise Invalid("A voicemail PIN is 4 to 10 digits.", {"pin": "4 to 10 digits"})
        device.voicemail_pin = pin
    if fields.voicemail_email is not None:
        address = fields.voicemail_email.strip()
        try:
            device.voicemail_email = normalise_email(address) if address else ""
        except Invalid as bad:
            raise Invalid(bad.message, {"vmemail": "not an email address"}) from None
    if fields.voicemail is not None:
        device.voicemail = fields.voicemail
    if device.voicemail and not device.voicemail_pin:
        raise Invalid(
            "Voicemail needs a PIN (4 to 10 digits) to listen to messages: add pin:NNNN.",
            {"pin": "needed for voicemail"},
        )
    if fields.voicemail is False and device.id is not None:
        await _refuse_if_voicemail_used(session, device)
    if fields.codecs is not None:
        device.codecs = ",".join(_codecs(fields.codecs))
    if fields.record_calls is not None:
        device.record_calls = fields.record_calls
    if fields.enabled is not None:
        device.enabled = fields.enabled


async def _caller_number(session: AsyncSession, ctx: Context, account: Account, text: str) -> str:
    """One of the account's own numbers (DIDs); staff may set any valid number."""
    if not text.strip():
        return ""
    number = phone_number(text, ctx.settings.fax_country, "caller")
    if ctx.actor.is_staff:
        return number
    own = await session.scalar(
        select(Did.id).where(Did.account_id == account.id, Did.number == number)
    )
    if own is None:
        raise Invalid(
            f"{number} is not a number of account {account.number}; a device calls out with "
            "one of the account's own numbers (`/route did list`).",
            {"caller": "not the account's number"},
        )
    return number


def _caller_name(text: str) -> str:
    name = " ".join(text.split())
    if len(name) > CALLER_NAME_MAX or any(c in name for c in '"<>'):
        raise Invalid(
            f'A caller name is at most {CALLER_NAME_MAX} characters, without " < or >.',
            {"callername": "too long or odd characters"},
        )
    return name


def _codecs(text: str) -> list[str]:
    words = [w.strip() for w in re.split(r"[,\s]+", text) if w.strip()]
    unknown = [w for w in words if w.lower() not in _CODEC_BY_WORD]
    if unknown or not words:
        raise Invalid(
            f"Unknown codec(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(CODECS)}.",
            {"codecs": "unknown codec"},
        )
    return list(dict.fromkeys(_CODEC_BY_WORD[w.lower()] for w in words))


async def _refuse_if_voicemail_used(session: AsyncSession, device: SipDevice) -> None:
    voicemail = Destination("voicemail", device.username)
    used_by = await references(session, device.account_id, voicemail)
    if used_by:
        raise Invalid(
            f"Voicemail of {device.username} still gets calls from {', '.join(used_by)}; "
            "point those elsewhere before turning it off.",
            {"voicemail": "in use"},
        )


def _password_of(ctx: Context, device: SipDevice) -> str:
    try:
        return unseal(ctx.settings, device.password_sealed)
    except SecretUnreadable:
        raise Refusal(
            f"The stored password of {device.username} cannot be read: C2_SECRET_KEY changed "
            f"since it was set. Make a new one with `/c2 device password {device.username} reset` "
            "and enter it in the phone."
        ) from None


def _readable_password(ctx: Context, device: SipDevice) -> str | None:
    try:
        return unseal(ctx.settings, device.password_sealed)
    except SecretUnreadable:
        return None


def _new_password(ctx: Context, username: str) -> str:
    """A strong random password; for a request that may come again (a kept Slack request, a
    confirmed mail) the same one each time, so a replay finds what it made instead of making
    the device again or resetting its password twice. Derived with C2_SECRET_KEY, so no one
    without the key can work it out from the request."""
    key = ctx.settings.secret_key
    if ctx.request_ref is None or key is None:
        return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))
    message = f"device password:{ctx.request_ref}:{username}".encode()
    digest = hmac.new(key.get_secret_value().encode(), message, hashlib.sha256).digest()
    value, chars = int.from_bytes(digest, "big"), []
    for _ in range(PASSWORD_LENGTH):
        value, index = divmod(value, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def _same_request(ctx: Context, device: SipDevice, account: Account, password: str) -> bool:
    """The device was made by this very request (replayed): its password is this request's."""
    return (
        ctx.request_ref is not None
        and device.account_id == account.id
        and _readable_password(ctx, device) == password
    )


def _made(
    ctx: Context, device: SipDevice, account: Account, password: str, *, given: bool
) -> DeviceMade:
    return DeviceMade(
        username=device.username,
        account=account.number,
        extension=device.extension,
        password=password,
        password_given=given,
        server=sip_server(ctx, account),
    )


def _password_reply(username: str, password: str, *, new: bool) -> Reply:
    title = f"New password for {username}" if new else f"Password of {username}"
    text = (
        "Enter it in the phone now: until then the phone cannot register."
        if new
        else "Only you see this. Anyone with it can make calls as this device."
    )
    return Reply(title=title, fields=(("User name", username), ("Password", password)), text=text)


def _settings_fields(settings: DeviceSettings) -> tuple[tuple[str, str], ...]:
    voicemail = "off"
    if settings.voicemail:
        to = f", messages mailed to {settings.voicemail_email}" if settings.voicemail_email else ""
        voicemail = f"on (PIN set{to})"
    return (
        ("Account", settings.account),
        ("Extension", settings.extension),
        ("Status", "enabled" if settings.enabled else "disabled"),
        ("Caller number", settings.caller_number or "not set"),
        ("Caller name", settings.caller_name or "not set"),
        ("Voicemail", voicemail),
        ("Codecs", ", ".join(settings.codecs)),
        ("Record calls", "yes" if settings.record_calls else "no"),
    )


_WORDS = {
    "password_sealed": "password",
    "caller_number": "caller number",
    "caller_name": "caller name",
    "voicemail_pin": "voicemail PIN",
    "voicemail_email": "voicemail email",
    "record_calls": "call recording",
    "enabled": "status",
}


def _words(columns: list[str]) -> list[str]:
    return [_WORDS.get(column, column) for column in columns]


async def _registration_fields(
    ctx: Context, username: str, realm: str
) -> tuple[tuple[str, str], ...]:
    if ctx.switch is None:
        return (("Registered", "unknown: switch not reachable"),)
    try:
        found: Registration | None = await registration(ctx.switch, username, realm)
    except SwitchUnavailable:
        return (("Registered", "unknown: switch not reachable"),)
    except SwitchError as error:
        return (("Registered", f"unknown: the switch answered {error.reply or error}"),)
    if found is None:
        return (("Registered", "no"),)
    until = f", until {found.expires:%Y-%m-%d %H:%M:%S} UTC" if found.expires is not None else ""
    network = f"{found.network_ip}:{found.network_port}".strip(":")
    proto = f" ({found.network_proto.upper()})" if found.network_proto else ""
    return (
        ("Registered", f"yes{until}"),
        ("Contact", found.contact),
        ("From", f"{network}{proto}" if network else "not given"),
        ("User agent", found.user_agent or "not given"),
    )
