"""Accounts, contacts and people: set up from the shell, looked up by every front door."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from c2bot.handlers import audit
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.permissions import check_account, check_staff, visible_accounts
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import Account, Contact, Person, RateGroup, Role

S = TypeVar("S", bound=Select[Any])


@dataclass(frozen=True)
class NewAccount:
    number: str
    company: str
    email: str
    reseller: str | None = None
    timezone: str = "Europe/Amsterdam"
    rate_group: str | None = None


@dataclass(frozen=True)
class LinkUser:
    slack_user_id: str | None
    role: Role
    account: str | None = None
    email: str | None = None
    name: str = ""


@dataclass(frozen=True)
class NewContact:
    account: str
    name: str
    email: str
    phone: str | None = None
    prefers_email: bool = False


def normalise_email(address: str) -> str:
    address = address.strip().lower()
    local, at, domain = address.partition("@")
    if not at or not local or "." not in domain or " " in address:
        raise Invalid(f"{address!r} is not an email address.", {"email": "not an email address"})
    return address


async def account_by_number(session: AsyncSession, number: str) -> Account:
    account = await session.scalar(select(Account).where(Account.number == number))
    if account is None:
        raise NotFound(f"There is no account {number}.")
    return account


async def target_account(
    session: AsyncSession, ctx: Context, number: str | None, what: str = "this"
) -> Account:
    """The account named by `account:N` (checked), else the actor's own one."""
    if number:
        account = await account_by_number(session, number)
        await check_account(session, ctx.actor, account.id)
        return account
    if ctx.actor.account_id is None:
        raise Invalid(
            f"Name the account {what} is for: account:NUMBER.", {"account": "Name the account."}
        )
    found = await session.get(Account, ctx.actor.account_id)
    if found is None:
        raise NotFound("Your account no longer exists; ask support to relink you.")
    return found


async def scoped(
    session: AsyncSession,
    ctx: Context,
    stmt: S,
    column: InstrumentedAttribute[int],
    number: str | None,
) -> S:
    """A listing narrowed to the accounts the actor may see, and to `account:N` if given."""
    visible = await visible_accounts(session, ctx.actor)
    if visible is not None:
        stmt = stmt.where(column.in_(visible))
    if number:
        account = await account_by_number(session, number)
        await check_account(session, ctx.actor, account.id)
        stmt = stmt.where(column == account.id)
    return stmt


async def rate_group_for(
    session: AsyncSession, name: str | None, reseller: Account | None
) -> RateGroup | None:
    """The rate group `name` for an account under `reseller` (None: the carrier's customer):
    a reseller's customer buys at one of its reseller's groups, others at the carrier's."""
    if not name:
        return None
    group = await session.scalar(select(RateGroup).where(RateGroup.name == name))
    if group is None:
        raise Invalid(f"There is no rate group {name!r}.", {"rate_group": "no such rate group"})
    seller = reseller.id if reseller else None
    if group.account_id != seller:
        whose = f"reseller {reseller.number}'s" if reseller else "the carrier's"
        raise Invalid(
            f"Rate group {name!r} is not one of {whose} rate groups, so it cannot be given here.",
            {"rate_group": "not a rate group of the seller"},
        )
    return group


async def add_account(ctx: Context, request: NewAccount) -> Reply:
    """Staff add any account; a reseller adds customers under itself (or under its customers)."""
    check_may_add_accounts(ctx)
    check_timezone(request.timezone)
    async with ctx.sessions.begin() as session:
        account = await insert_account(session, ctx, request)
    reseller = account.reseller
    under = f" under reseller {reseller.number}" if reseller else ""
    return Reply(title=f"Account {request.number} ({request.company}) added{under}.")


def check_may_add_accounts(ctx: Context) -> None:
    if not ctx.actor.is_staff and ctx.actor.role is not Role.RESELLER:
        raise NotAllowed("Only support staff and resellers can add accounts.")


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"{name!r} is not a time zone (e.g. Europe/Amsterdam).", {"timezone": "not a time zone"}
        ) from None
    return name


async def insert_account(
    session: AsyncSession,
    ctx: Context,
    request: NewAccount,
    action: str = "account.add",
    **columns: Any,
) -> Account:
    """Add one account (and its email as a contact) in the caller's transaction, audited.

    `columns` sets more of the account's fields (the platform's customer fields), as checked by
    the caller; the number, parent and rate group are checked here.
    """
    email = normalise_email(request.email)
    if await session.scalar(select(Account.id).where(Account.number == request.number)):
        raise Invalid(f"Account {request.number} already exists.", {"number": "already exists"})
    reseller = await parent_for(session, ctx, request.reseller)
    group = await rate_group_for(session, request.rate_group, reseller)
    account = Account(
        number=request.number,
        company=request.company,
        email=email,
        timezone=request.timezone,
        reseller_id=reseller.id if reseller else None,
        rate_group_id=group.id if group else None,
        **columns,
    )
    account.reseller = reseller
    session.add(account)
    await session.flush()
    try:
        await check_address_is_free(session, ctx, account, email)
    except NotAllowed as taken:
        raise Invalid(taken.message, {"email": "belongs to another account"}) from None
    session.add(Contact(account_id=account.id, name=request.company, email=email))
    audit.record(
        session,
        ctx,
        action,
        "account",
        account.number,
        account.id,
        reseller=reseller.number if reseller else None,
    )
    return account


async def parent_for(session: AsyncSession, ctx: Context, number: str | None) -> Account | None:
    """The reseller a new account belongs to: as named, or the reseller who adds it."""
    if number is None and ctx.actor.is_staff:
        return None
    if number is None:
        assert ctx.actor.account_id is not None
        parent = await session.get(Account, ctx.actor.account_id)
        if parent is None:
            raise NotFound("Your account no longer exists; ask support to relink you.")
        return parent
    parent = await account_by_number(session, number)
    await check_account(session, ctx.actor, parent.id)
    return parent


async def link_user(ctx: Context, request: LinkUser) -> Reply:
    check_staff(ctx.actor, "link users")
    if request.role in (Role.CUSTOMER, Role.RESELLER) and not request.account:
        raise Invalid(f"A {request.role.value} needs --account ACCOUNT_NUMBER.")
    if not request.slack_user_id and not request.email:
        raise Invalid("Give a Slack user id or an email address.")
    email = normalise_email(request.email) if request.email else None
    async with ctx.sessions.begin() as session:
        account = await account_by_number(session, request.account) if request.account else None
        person = await _find_person(session, request.slack_user_id, email)
        created = person is None
        if person is None:
            person = Person(role=request.role)
            session.add(person)
        person.slack_user_id = request.slack_user_id or person.slack_user_id
        person.email = email or person.email
        person.name = request.name or person.name
        person.role = request.role
        person.account_id = account.id if account else None
        await session.flush()
        action = "user.link" if created else "user.relink"
        audit.record(
            session,
            ctx,
            action,
            "person",
            person.id,
            person.account_id,
            role=request.role.value,
            slack_user_id=person.slack_user_id,
            email=email,
        )
    who = request.slack_user_id or email
    where = f" on account {request.account}" if request.account else ""
    return Reply(title=f"{who} is now {request.role.value}{where}.")


async def _find_person(
    session: AsyncSession, slack_user_id: str | None, email: str | None
) -> Person | None:
    if slack_user_id:
        person = await session.scalar(select(Person).where(Person.slack_user_id == slack_user_id))
        if person is not None:
            return person
    if email:
        return await session.scalar(
            select(Person).where(func.lower(Person.email) == email).order_by(Person.id).limit(1)
        )
    return None


async def add_contact(ctx: Context, request: NewContact) -> Reply:
    email = normalise_email(request.email)
    async with ctx.sessions.begin() as session:
        account = await account_by_number(session, request.account)
        await check_account(session, ctx.actor, account.id)
        await check_address_is_free(session, ctx, account, email)
        existing = await session.scalar(
            select(Contact).where(Contact.account_id == account.id, Contact.email == email)
        )
        contact = existing or Contact(account_id=account.id, email=email, name=request.name)
        contact.name, contact.phone = request.name, request.phone
        contact.prefers_email = request.prefers_email
        session.add(contact)
        await session.flush()
        audit.record(session, ctx, "contact.save", "contact", contact.id, account.id, email=email)
    return Reply(title=f"Contact {request.name} <{email}> saved on account {account.number}.")


async def check_address_is_free(
    session: AsyncSession, ctx: Context, account: Account, email: str
) -> None:
    """Only staff may give an address that already speaks for another account to this one.

    Mail from a contact's address opens cases on its account, so claiming somebody else's
    address would let a customer read (and answer) that person's mail to support.
    """
    if ctx.actor.is_staff:
        return
    elsewhere = await session.scalar(
        select(Contact.id)
        .where(func.lower(Contact.email) == email, Contact.account_id != account.id)
        .limit(1)
    ) or await session.scalar(
        select(Person.id)
        .where(func.lower(Person.email) == email, Person.account_id != account.id)
        .limit(1)
    )
    if elsewhere is not None:
        raise NotAllowed(f"{email} already belongs to another account; ask support to add it.")


async def list_accounts(ctx: Context) -> Reply:
    async with ctx.sessions() as session:
        visible = await visible_accounts(session, ctx.actor)
        query = select(Account).order_by(Account.number)
        if visible is not None:
            query = query.where(Account.id.in_(visible))
        accounts = list(await session.scalars(query))
    rows = tuple(
        (a.number, a.company, a.email, a.reseller.number if a.reseller else "-", a.timezone)
        for a in accounts
    )
    table = Table(("Account", "Company", "Email", "Reseller", "Time zone"), rows)
    return Reply(title=f"{len(rows)} account(s)", table=table)


async def person_by_slack_id(session: AsyncSession, slack_user_id: str) -> Person | None:
    return await session.scalar(select(Person).where(Person.slack_user_id == slack_user_id))


async def actor_for_email(session: AsyncSession, address: str) -> Actor | None:
    """A person with this email, else the account contact with it (acting as a customer).

    An address that is a contact of several accounts names none of them: mail from it cannot
    say which account it speaks for, so it is treated as unknown.
    """
    address = address.lower()
    person = await session.scalar(
        select(Person).where(func.lower(Person.email) == address).order_by(Person.id).limit(1)
    )
    if person is not None:
        return Actor.of(person)
    contacts = list(
        await session.scalars(
            select(Contact).where(func.lower(Contact.email) == address).order_by(Contact.id)
        )
    )
    if len({c.account_id for c in contacts}) != 1:
        return None
    contact = contacts[0]
    return Actor(
        label=f"{contact.name} <{contact.email}>",
        role=Role.CUSTOMER,
        account_id=contact.account_id,
        email=contact.email,
    )
