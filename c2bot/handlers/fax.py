"""Faxes: who may send from which address, where to, and the jobs that carry them.

Mail2Fax (the mail gateway), Web2Fax (`/fax send`) and `c2bot fax send` all end in
`submit_fax`, which checks the destination numbers against the account's fax policy (valid,
not premium-rate or satellite, in a listed country), the daily page limit, and stores the
request, its documents and one job per number in one transaction. The worker (faxgw) renders
and sends; these handlers list, show, retry and cancel what it does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.config.settings import parse_countries, parse_esl_hosts
from c2bot.handlers import dids
from c2bot.handlers.accounts import normalise_email, scoped, target_account
from c2bot.handlers.audit import record
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.crypto import seal
from c2bot.storage.fax import FaxPolicy, fax_policy, pages_sent_since
from c2bot.storage.models import (
    FAX_FINAL,
    FAX_WAITING,
    Account,
    Did,
    FaxAttempt,
    FaxDocument,
    FaxJob,
    FaxRequest,
    FaxSender,
    FaxSettings,
    FaxState,
)

MAX_NUMBERS = 20
# International networks and satellite services (Inmarsat, Iridium, Thuraya, ...): ITU codes
# 870-888 that belong to no country. Faxes there cost many euros a minute.
SATELLITE_CODES = frozenset({870, 871, 872, 873, 874, 881, 882, 883, 888})
COSTLY_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) number, often used for fraud",
    PhoneNumberType.PAGER: "a pager number",
}
NUMBER_SPLIT = re.compile(r"[,;\n]|\band\b|\ben\b", re.IGNORECASE)


# --- numbers and the toll-fraud guard ---------------------------------------------------------


def normalise_number(text: str, default_region: str) -> str:
    """A phone number in E.164 (`+31201234567`), or `Invalid` saying what is wrong."""
    raw = text.strip()
    if not raw:
        raise Invalid("No fax number was given.", {"number": "missing"})
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise Invalid(
            f"{text.strip()!r} is not a phone number.", {"number": "not a phone number"}
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid(
            f"{text.strip()!r} is not a valid phone number"
            f" (read as {phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)}).",
            {"number": "not a valid number"},
        )
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def check_destination(number: str, policy: FaxPolicy, default_region: str) -> str:
    """The E.164 form of `number` if this account may fax it; else `Invalid` in words."""
    e164 = normalise_number(number, default_region)
    parsed = phonenumbers.parse(e164)
    shown = phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)
    if parsed.country_code in SATELLITE_CODES:
        raise Invalid(
            f"{shown} is a satellite or international network number; faxes there are refused.",
            {"number": "satellite"},
        )
    kind = phonenumbers.number_type(parsed)
    if kind in COSTLY_TYPES and not policy.allow_premium:
        raise Invalid(
            f"{shown} is {COSTLY_TYPES[kind]}; faxes to such numbers are refused unless support "
            "allows them for your account.",
            {"number": "premium-rate"},
        )
    region = phonenumbers.region_code_for_number(parsed) or "??"
    if not policy.allows_country(region):
        raise Invalid(
            f"{shown} is in {region}, which is not among the countries your account may fax "
            f"({', '.join(policy.countries)}). Ask support to add it.",
            {"number": "country not allowed"},
        )
    return e164


def split_numbers(text: str) -> list[str]:
    """The fax numbers in a mail subject or a command: separated by `,`, `;` or `and`."""
    parts = [part.strip() for part in NUMBER_SPLIT.split(text) if part and part.strip()]
    return [p for p in parts if any(ch.isdigit() for ch in p)] or ([text.strip()] if text else [])


# --- authorised senders ("Fax Email Id") --------------------------------------------------------


def hash_password(password: str) -> str:
    """scrypt with a random salt: fax SMTP passwords and customers' portal passwords."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$", 2)
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate.hex(), digest)


async def allow_sender(
    ctx: Context, email: str, account_number: str | None, *, smtp_password: bool = False
) -> Reply:
    """Authorise an address to send faxes by mail for an account (optionally with SMTP AUTH)."""
    address = normalise_email(email)
    async with ctx.sessions() as session:
        account = await target_account(session, ctx, account_number)
        existing = await session.scalar(select(FaxSender).where(FaxSender.email == address))
        if existing is not None and existing.account_id != account.id:
            raise Invalid(
                f"{address} already sends faxes for account {existing.account.number}; "
                "an address can send for one account only.",
                {"email": "in use by another account"},
            )
        sender = existing or FaxSender(account_id=account.id, email=address)
        password = secrets.token_urlsafe(12) if smtp_password else None
        if password:
            sender.smtp_password_hash = hash_password(password)
        session.add(sender)
        record(session, ctx, "fax.allow", "fax_sender", address, account.id, smtp=smtp_password)
        await session.commit()
    fields: list[tuple[str, str]] = [("Account", account.number), ("Address", address)]
    if password:
        fields += [("SMTP user", address), ("SMTP password (shown once)", password)]
    return Reply(
        title=f"{address} may now send faxes for account {account.number}.",
        text=f"Mail a document to fax@{ctx.settings.mail_domain} with the fax number as subject.",
        fields=tuple(fields),
    )


async def remove_sender(ctx: Context, email: str) -> Reply:
    address = normalise_email(email)
    async with ctx.sessions() as session:
        sender = await session.scalar(select(FaxSender).where(FaxSender.email == address))
        if sender is None or not await _may(session, ctx, sender.account_id):
            raise NotFound(f"{address} is not an authorised fax sender you manage.")
        await session.delete(sender)
        record(session, ctx, "fax.disallow", "fax_sender", address, sender.account_id)
        await session.commit()
    return Reply(title=f"{address} may no longer send faxes by mail.")


async def list_senders(ctx: Context, account_number: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(FaxSender).order_by(FaxSender.email)
        stmt = await scoped(session, ctx, stmt, FaxSender.account_id, account_number)
        senders = list(await session.scalars(stmt))
    rows = tuple(
        (s.email, s.account.number, "yes" if s.smtp_password_hash else "no") for s in senders
    )
    if not rows:
        return Reply(title="No authorised fax senders.")
    return Reply(
        title=f"{len(rows)} authorised fax sender(s)",
        table=Table(("Address", "Account", "SMTP AUTH"), rows),
    )


async def sender_for(session: AsyncSession, address: str) -> FaxSender | None:
    return await session.scalar(select(FaxSender).where(FaxSender.email == address.lower()))


# --- fax settings per account (reseller) ------------------------------------------------------


@dataclass(frozen=True)
class FaxSettingsChange:
    account: str | None = None
    retries: int | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_user: str | None = None
    imap_password: str | None = None
    imap_tls: bool | None = None
    server: str | None = None
    countries: str | None = None
    allow_premium: bool | None = None
    daily_pages: int | None = None
    clear: tuple[str, ...] = ()


GUARD_FIELDS = ("countries", "allow_premium", "daily_pages")
SETTING_FIELDS = (
    "retries",
    "imap_host",
    "imap_port",
    "imap_user",
    "imap_password",
    "imap_tls",
    "server",
    *GUARD_FIELDS,
)


async def set_fax_settings(ctx: Context, change: FaxSettingsChange) -> Reply:
    """Set an account's own fax settings; the toll-fraud guard only from above the account."""
    if change.retries is not None and not 0 <= change.retries <= 10:
        raise Invalid("Fax send retries must be 0 to 10.", {"retries": "0 to 10"})
    if change.daily_pages is not None and change.daily_pages < 0:
        raise Invalid("The daily page limit cannot be negative.", {"daily_pages": ">= 0"})
    if change.countries is not None:
        try:
            countries = ",".join(parse_countries(change.countries))
        except ValueError as error:
            raise Invalid(f"countries: {error}.", {"countries": str(error)}) from None
    unknown = [name for name in change.clear if name not in SETTING_FIELDS]
    if unknown:
        raise Invalid(
            f"Unknown fax setting {', '.join(unknown)}; the settings are "
            f"{', '.join(SETTING_FIELDS)}."
        )
    if change.server is not None:
        known = _server_names(ctx)
        if change.server not in known:
            raise Invalid(
                f"There is no fax server {change.server!r}; configured: {', '.join(known)}.",
                {"server": "unknown"},
            )
    async with ctx.sessions() as session:
        account = await target_account(session, ctx, change.account)
        touching_guard = [
            name
            for name in GUARD_FIELDS
            if getattr(change, name) is not None or name in change.clear
        ]
        if touching_guard and not ctx.actor.is_staff and ctx.actor.account_id == account.id:
            raise NotAllowed(
                "The toll-fraud guard (countries, premium numbers, daily pages) of an account is "
                "set by its reseller or by support, not by the account itself."
            )
        row = await session.get(FaxSettings, account.id) or FaxSettings(account_id=account.id)
        changed: list[str] = []
        for name in SETTING_FIELDS:
            value = getattr(change, name)
            if name == "countries" and value is not None:
                value = countries
            if name == "imap_password" and value is not None:
                value = seal(ctx.settings, value)
            if value is not None:
                setattr(row, name, value)
                changed.append(name)
        for name in change.clear:
            setattr(row, name, None)
            changed.append(name)
        if not changed:
            raise Invalid("Nothing to change: give at least one setting, e.g. retries:5.")
        session.add(row)
        record(session, ctx, "fax.settings", "account", account.number, account.id, fields=changed)
        await session.commit()
    return await show_fax_settings(ctx, account.number)


def _server_names(ctx: Context) -> list[str]:
    names = ["default"]
    if ctx.settings.esl_hosts:
        names += [name for name, *_ in parse_esl_hosts(ctx.settings.esl_hosts)]
    return names


async def show_fax_settings(ctx: Context, account_number: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        account = await target_account(session, ctx, account_number)
        policy = await fax_policy(session, ctx.settings, account.id)
        own = await session.get(FaxSettings, account.id)
        today = await pages_sent_since(session, account.id, _day_start(ctx, account))

    def where(name: str) -> str:
        source = policy.set_at.get(name, "global")
        return "" if source == f"account {account.id}" else f" (from {_source_label(source)})"

    mailbox = "not set"
    if own is not None and own.imap_host:
        password = "password set" if own.imap_password else "no password"
        mailbox = (
            f"{own.imap_user}@{own.imap_host}:{own.imap_port or (993 if own.imap_tls else 143)}"
            f"{' (TLS)' if own.imap_tls else ''}, {password}"
        )
    fields = (
        ("Fax send retries", f"{policy.retries}{where('retries')}"),
        ("Fax server", f"{policy.server or 'default'}{where('server')}"),
        ("Fax mailbox", mailbox),
        ("Countries", f"{', '.join(policy.countries)}{where('countries')}"),
        (
            "Premium-rate numbers",
            f"{'allowed' if policy.allow_premium else 'refused'}{where('allow_premium')}",
        ),
        ("Daily page limit", f"{policy.daily_pages}{where('daily_pages')}"),
        ("Pages sent today", str(today)),
    )
    return Reply(title=f"Fax settings of account {account.number}", fields=fields)


def _source_label(source: str) -> str:
    return "the global settings" if source == "global" else source


def _day_start(ctx: Context, account: Account) -> datetime:
    zone = ZoneInfo(account.timezone)
    local = ctx.clock().astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# --- DIDs for Fax2Mail --------------------------------------------------------------------------


async def set_did_foip(ctx: Context, number: str, email: str, account_number: str | None) -> Reply:
    """Route a DID as FOIP: faxes received on it are mailed as PDF to one address.

    Numbers and their forwarding live in `c2bot.handlers.dids`; this is its FOIP case.
    """
    forwarding = dids.Forwarding("foip", email)
    return await dids.set_forwarding(ctx, number, forwarding, account_number)


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaxFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class FaxSubmission:
    numbers: Sequence[str]
    files: Sequence[FaxFile] = ()
    text: str | None = None
    subject: str = ""
    account: str | None = None
    sender_email: str | None = None
    caller: str | None = None
    caller_name: str | None = None
    source_ref: str | None = None


@dataclass(frozen=True)
class FaxAccepted:
    request_id: int
    jobs: tuple[tuple[int, str], ...]
    account: str
    duplicate: bool = False
    refused: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def reply(self) -> Reply:
        rows = tuple((f"#{job}", number, "queued") for job, number in self.jobs)
        refused = tuple((number, reason) for number, reason in self.refused)
        text = "Already received earlier; nothing new was queued." if self.duplicate else ""
        if refused:
            text += "\n".join(f"Not sent to {n}: {why}" for n, why in refused)
        return Reply(
            title=f"Fax queued for {len(rows)} number(s) (account {self.account}).",
            text=text.strip(),
            table=Table(("Fax", "Number", "State"), rows) if rows else None,
        )


@dataclass(frozen=True)
class _Checked:
    account: Account
    policy: FaxPolicy
    numbers: list[str]
    refused: list[tuple[str, str]]
    caller_number: str
    caller_name: str


async def _check(
    session: AsyncSession, ctx: Context, sub: FaxSubmission, *, partial: bool
) -> _Checked:
    """Everything `submit_fax` refuses, in the order a person would fix it."""
    if not sub.files and not (sub.text and sub.text.strip()):
        raise Invalid(
            "There is nothing to fax: attach a document or give the text to send.",
            {"file": "missing"},
        )
    if not sub.numbers:
        raise Invalid("No fax number was given.", {"number": "missing"})
    if len(sub.numbers) > MAX_NUMBERS:
        raise Invalid(f"At most {MAX_NUMBERS} fax numbers at a time.", {"number": "too many"})
    account = await target_account(session, ctx, sub.account, "the fax")
    policy = await fax_policy(session, ctx.settings, account.id)
    numbers, refused = _checked_numbers(sub.numbers, policy, ctx.settings.fax_country)
    if refused and (not partial or not numbers):
        detail = " ".join(why for _, why in refused)
        raise Invalid(f"Not sent: {detail}", {"number": detail})
    sent_today = await pages_sent_since(session, account.id, _day_start(ctx, account))
    if policy.daily_pages and sent_today >= policy.daily_pages:
        raise Invalid(
            f"Account {account.number} has sent its {policy.daily_pages} fax pages for today; "
            "the limit resets at midnight, or support can raise it.",
            {"number": "daily page limit"},
        )
    caller_number, caller_name = await _caller(session, ctx, account, sub)
    return _Checked(account, policy, numbers, refused, caller_number, caller_name)


async def check_submission(ctx: Context, sub: FaxSubmission) -> None:
    """What `submit_fax` would refuse, without storing anything (a form checks before closing)."""
    async with ctx.sessions() as session:
        await _check(session, ctx, sub, partial=False)


async def submit_fax(ctx: Context, sub: FaxSubmission, *, partial: bool = False) -> FaxAccepted:
    """Validate and store a fax request with one job per number, idempotent by `source_ref`.

    With `partial`, numbers that fail the checks are reported in `refused` and the others are
    still sent (Mail2Fax: one bad number in a subject should not stop the rest); otherwise any
    bad number refuses the whole request, with every problem named.
    """
    async with ctx.sessions() as session:
        if sub.source_ref:
            earlier = await _request_by_ref(session, sub.source_ref)
            if earlier is not None:
                return await _accepted(session, earlier, duplicate=True)
        checked = await _check(session, ctx, sub, partial=partial)
        account = checked.account
        request = FaxRequest(
            account_id=account.id,
            channel=ctx.channel,
            source_ref=sub.source_ref,
            sender_email=sub.sender_email or ctx.actor.email,
            person_id=ctx.actor.person_id,
            caller_number=checked.caller_number,
            caller_name=checked.caller_name,
            subject=sub.subject[:300],
            cover_text=(sub.text or None),
            created_at=ctx.clock(),
        )
        request.documents = [
            FaxDocument(
                position=i,
                filename=f.filename[:255],
                content_type=f.content_type[:127],
                data=f.data,
            )
            for i, f in enumerate(sub.files)
        ]
        session.add(request)
        jobs = [
            FaxJob(
                request=request,
                account_id=account.id,
                number=number,
                max_attempts=checked.policy.retries + 1,
                next_attempt_at=ctx.clock(),
                created_at=ctx.clock(),
            )
            for number in checked.numbers
        ]
        session.add_all(jobs)
        try:
            await session.flush()
        except IntegrityError:
            await session.rollback()
            if sub.source_ref:
                earlier = await _request_by_ref(session, sub.source_ref)
                if earlier is not None:
                    return await _accepted(session, earlier, duplicate=True)
            raise
        record(
            session,
            ctx,
            "fax.send",
            "fax_request",
            request.id,
            account.id,
            numbers=checked.numbers,
            files=[f.filename for f in sub.files],
        )
        await session.commit()
        accepted = FaxAccepted(
            request_id=request.id,
            jobs=tuple((job.id, job.number) for job in jobs),
            account=account.number,
            refused=tuple(checked.refused),
        )
    ctx.nudge("fax")
    return accepted


def _checked_numbers(
    numbers: Sequence[str], policy: FaxPolicy, region: str
) -> tuple[list[str], list[tuple[str, str]]]:
    good: list[str] = []
    refused: list[tuple[str, str]] = []
    for raw in numbers:
        try:
            e164 = check_destination(raw, policy, region)
        except Invalid as error:
            refused.append((raw.strip(), error.message))
            continue
        if e164 not in good:
            good.append(e164)
    return good, refused


async def _caller(
    session: AsyncSession, ctx: Context, account: Account, sub: FaxSubmission
) -> tuple[str, str]:
    """Caller id and name for the fax: one of the account's own numbers, never a stranger's."""
    name = (sub.caller_name or account.company)[:100]
    owned = list(
        await session.scalars(
            select(Did.number).where(Did.account_id == account.id).order_by(Did.id)
        )
    )
    if sub.caller:
        e164 = normalise_number(sub.caller, ctx.settings.fax_country)
        if e164 not in owned:
            raise Invalid(
                f"{e164} is not a number of account {account.number}, so it cannot be the "
                f"fax's caller id; the account's numbers: {', '.join(owned) or 'none'}.",
                {"caller": "not the account's number"},
            )
        return e164, name
    return (owned[0] if owned else ""), name


async def _request_by_ref(session: AsyncSession, ref: str) -> FaxRequest | None:
    return await session.scalar(select(FaxRequest).where(FaxRequest.source_ref == ref))


async def _accepted(session: AsyncSession, request: FaxRequest, duplicate: bool) -> FaxAccepted:
    jobs = await session.scalars(
        select(FaxJob).where(FaxJob.request_id == request.id).order_by(FaxJob.id)
    )
    return FaxAccepted(
        request_id=request.id,
        jobs=tuple((job.id, job.number) for job in jobs),
        account=request.account.number,
        duplicate=duplicate,
    )


# --- looking at faxes -------------------------------------------------------------------------


@dataclass(frozen=True)
class FaxFilter:
    account: str | None = None
    state: FaxState | None = None
    limit: int = 50


@dataclass(frozen=True)
class FaxView:
    job: FaxJob
    attempts: tuple[FaxAttempt, ...]
    files: tuple[str, ...]

    def reply(self, tz: str = "UTC") -> Reply:
        job = self.job
        zone = ZoneInfo(tz)
        fields: list[tuple[str, str]] = [
            ("To", job.number),
            ("Account", job.request.account.number),
            ("State", describe_state(job)),
            ("Attempts", f"{job.attempts} of {job.max_attempts}"),
            ("Pages", _pages(job)),
            ("Queued", f"{job.created_at.astimezone(zone):%Y-%m-%d %H:%M}"),
        ]
        if job.state is FaxState.RETRY_WAIT:
            fields.append(("Next try", f"{job.next_attempt_at.astimezone(zone):%H:%M}"))
        if job.remote_station_id:
            fields.append(("Remote station", job.remote_station_id))
        if job.result_text:
            fields.append(("Result", job.result_text))
        if self.files:
            fields.append(("Documents", ", ".join(self.files)))
        rows = tuple(
            (
                f"{a.started_at.astimezone(zone):%Y-%m-%d %H:%M:%S}",
                a.outcome or "in progress",
                a.result_text or a.hangup_cause,
                "" if a.pages is None else str(a.pages),
            )
            for a in self.attempts
        )
        return Reply(
            title=f"Fax #{job.id} to {job.number}",
            fields=tuple(fields),
            table=Table(("Call", "Outcome", "Detail", "Pages"), rows) if rows else None,
        )


def _pages(job: FaxJob) -> str:
    total = job.pages_total if job.pages_total is not None else job.request.pages
    if total is None:
        return "not rendered yet"
    if job.pages_sent is None:
        return str(total)
    return f"{job.pages_sent} of {total} sent"


def describe_state(job: FaxJob) -> str:
    return {
        FaxState.QUEUED: "queued",
        FaxState.RENDERING: "preparing pages",
        FaxState.DIALING: "dialling",
        FaxState.SENDING: "sending",
        FaxState.SENT: "sent",
        FaxState.RETRY_WAIT: "waiting to retry",
        FaxState.FAILED: "failed",
        FaxState.CANCELLED: "cancelled",
    }[job.state]


async def list_faxes(ctx: Context, query: FaxFilter) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(FaxJob).order_by(FaxJob.id.desc()).limit(query.limit)
        stmt = await scoped(session, ctx, stmt, FaxJob.account_id, query.account)
        if query.state:
            stmt = stmt.where(FaxJob.state == query.state)
        jobs = list(await session.scalars(stmt))
    rows = tuple(
        (
            f"#{job.id}",
            job.request.account.number,
            job.number,
            describe_state(job),
            _pages(job),
            str(job.attempts),
            f"{job.created_at:%Y-%m-%d %H:%M}",
        )
        for job in jobs
    )
    if not rows:
        return Reply(title="No faxes.")
    columns = ("Fax", "Account", "To", "State", "Pages", "Tries", "Queued (UTC)")
    return Reply(title=f"{len(rows)} fax(es)", table=Table(columns, rows))


async def load_visible_job(session: AsyncSession, ctx: Context, job_id: int) -> FaxJob:
    job = await session.get(FaxJob, job_id)
    if job is None or not await _may(session, ctx, job.account_id):
        raise NotFound(f"There is no fax #{job_id} among the faxes you may see.")
    return job


async def show_fax(ctx: Context, job_id: int) -> FaxView:
    async with ctx.sessions() as session:
        job = await load_visible_job(session, ctx, job_id)
        attempts = await session.scalars(
            select(FaxAttempt).where(FaxAttempt.job_id == job.id).order_by(FaxAttempt.id)
        )
        files = await session.scalars(
            select(FaxDocument.filename)
            .where(FaxDocument.request_id == job.request_id)
            .order_by(FaxDocument.position)
        )
        return FaxView(job=job, attempts=tuple(attempts), files=tuple(files))


async def retry_fax(ctx: Context, job_id: int) -> Reply:
    """Send a failed or cancelled fax again (a fresh set of attempts), or a waiting one now."""
    async with ctx.sessions() as session:
        job = await load_visible_job(session, ctx, job_id)
        if job.state not in (FaxState.FAILED, FaxState.CANCELLED, FaxState.RETRY_WAIT):
            raise Invalid(
                f"Fax #{job.id} is {describe_state(job)}; only a failed, cancelled or "
                "waiting fax can be retried."
            )
        policy = await fax_policy(session, ctx.settings, job.account_id)
        if job.state in (FaxState.FAILED, FaxState.CANCELLED):
            job.max_attempts = job.attempts + policy.retries + 1
        job.state = FaxState.QUEUED
        job.next_attempt_at = ctx.clock()
        job.finished_at = None
        record(session, ctx, "fax.retry", "fax_job", job.id, job.account_id)
        await session.commit()
    ctx.nudge("fax")
    return Reply(title=f"Fax #{job_id} to {job.number} is queued again.")


async def cancel_fax(ctx: Context, job_id: int) -> Reply:
    """Cancel a fax that is not on the line yet; one being sent cannot be taken back."""
    async with ctx.sessions() as session:
        job = await load_visible_job(session, ctx, job_id)
        if job.state in FAX_FINAL:
            raise Invalid(f"Fax #{job.id} is already {describe_state(job)}.")
        if job.state not in (*FAX_WAITING, FaxState.RENDERING):
            raise Invalid(
                f"Fax #{job.id} is {describe_state(job)} right now and cannot be stopped; "
                "it ends by itself in a few minutes."
            )
        job.state = FaxState.CANCELLED
        job.finished_at = ctx.clock()
        job.result_text = f"cancelled by {ctx.actor.label}"
        record(session, ctx, "fax.cancel", "fax_job", job.id, job.account_id)
        await session.commit()
        return Reply(title=f"Fax #{job.id} to {job.number} is cancelled.")


# --- shared -----------------------------------------------------------------------------------


async def _may(session: AsyncSession, ctx: Context, account_id: int) -> bool:
    visible = await visible_accounts(session, ctx.actor)
    return visible is None or account_id in visible
