"""Fax repositories: the settings an account inherits, page counts, and claiming jobs.

Claiming is a lease: a worker takes due jobs by setting `lease_owner`/`lease_until` with a
compare-and-set update, after selecting candidates with `FOR UPDATE SKIP LOCKED` on PostgreSQL
(SQLite has one writer at a time, and the compare-and-set alone keeps two workers apart).
A worker that dies loses its lease when `lease_until` passes; the job is then reconciled with
the switch before anything is retried (see faxgw.worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.config.settings import Settings, parse_countries
from c2bot.storage.models import (
    FAX_WAITING,
    Account,
    FaxJob,
    FaxSettings,
    FaxState,
)

MAX_TREE_DEPTH = 16


@dataclass(frozen=True)
class Mailbox:
    """A fax mailbox to poll, from the global settings or an account's own fax settings."""

    key: str
    host: str
    port: int
    user: str
    sealed_password: str | None
    plain_password: str | None
    tls: bool


@dataclass(frozen=True)
class FaxPolicy:
    """What applies to one account after inheritance (account, its resellers, global)."""

    retries: int
    server: str | None
    countries: tuple[str, ...]
    allow_premium: bool
    daily_pages: int
    set_at: dict[str, str]

    def allows_country(self, region: str) -> bool:
        return region.upper() in self.countries


async def settings_chain(session: AsyncSession, account_id: int) -> tuple[list[FaxSettings], int]:
    """The account's own fax settings, then its reseller's, and so on up the tree; and the id
    of the account at the top of the tree (the one with no reseller)."""
    chain: list[FaxSettings] = []
    current: int | None = account_id
    top = account_id
    seen: set[int] = set()
    for _ in range(MAX_TREE_DEPTH):
        if current is None or current in seen:
            break
        seen.add(current)
        top = current
        own = await session.get(FaxSettings, current)
        if own is not None:
            chain.append(own)
        current = await session.scalar(select(Account.reseller_id).where(Account.id == current))
    return chain, top


async def fax_policy(session: AsyncSession, settings: Settings, account_id: int) -> FaxPolicy:
    chain, top = await settings_chain(session, account_id)
    set_at: dict[str, str] = {}

    def pick(name: str, default: object) -> object:
        for row in chain:
            value = getattr(row, name)
            if value is not None:
                set_at[name] = f"account {row.account_id}"
                return value
        set_at[name] = "global"
        return default

    retries = pick("retries", settings.fax_retries)
    server = pick("server", None)
    assert isinstance(retries, int)
    assert server is None or isinstance(server, str)
    countries, premium, daily = _guard(chain, top, settings, set_at)
    return FaxPolicy(
        retries=retries,
        server=server,
        countries=countries,
        allow_premium=premium,
        daily_pages=daily,
        set_at=set_at,
    )


def _guard(
    chain: list[FaxSettings], top: int, settings: Settings, set_at: dict[str, str]
) -> tuple[tuple[str, ...], bool, int]:
    """The toll-fraud guard along the tree: the top account's own row (only support can set
    it) may widen the global guard; every row below can only make it stricter, so a reseller
    cannot lift its own limits by loosening a customer's."""
    countries = tuple(parse_countries(settings.fax_countries))
    premium = False
    daily = settings.fax_daily_pages
    for name in ("countries", "allow_premium", "daily_pages"):
        set_at[name] = "global"
    for row in reversed(chain):
        widen = row.account_id == top
        where = f"account {row.account_id}"
        if row.countries is not None:
            own = tuple(parse_countries(row.countries))
            countries = own if widen else tuple(c for c in countries if c in own)
            set_at["countries"] = where
        if row.allow_premium is not None:
            premium = row.allow_premium if widen else premium and row.allow_premium
            set_at["allow_premium"] = where
        if row.daily_pages is not None:
            if widen or not daily:
                daily = row.daily_pages
            elif row.daily_pages:
                daily = min(daily, row.daily_pages)
            set_at["daily_pages"] = where
    return countries, premium, daily


async def pages_sent_since(session: AsyncSession, account_id: int, since: datetime) -> int:
    """Pages this account had on the line since `since` (sent, or partly sent)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(FaxJob.pages_sent), 0)).where(
            FaxJob.account_id == account_id, FaxJob.started_at >= since
        )
    )
    return int(total or 0)


async def mailboxes(session: AsyncSession, settings: Settings) -> list[Mailbox]:
    """Every fax mailbox to poll: the global one (C2_IMAP_*) and each account's own."""
    boxes: list[Mailbox] = []
    if settings.imap_host and settings.imap_user:
        boxes.append(
            Mailbox(
                key="global",
                host=settings.imap_host,
                port=settings.imap_port or (993 if settings.imap_tls else 143),
                user=settings.imap_user,
                sealed_password=None,
                plain_password=(
                    settings.imap_password.get_secret_value() if settings.imap_password else ""
                ),
                tls=bool(settings.imap_tls),
            )
        )
    rows = await session.scalars(
        select(FaxSettings).where(
            FaxSettings.imap_host.is_not(None), FaxSettings.imap_user.is_not(None)
        )
    )
    for row in rows:
        assert row.imap_host is not None and row.imap_user is not None
        boxes.append(
            Mailbox(
                key=f"account:{row.account_id}",
                host=row.imap_host,
                port=row.imap_port or (993 if row.imap_tls else 143),
                user=row.imap_user,
                sealed_password=row.imap_password,
                plain_password=None,
                tls=bool(row.imap_tls),
            )
        )
    return boxes


async def claim_jobs(
    session: AsyncSession, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[int]:
    """Take up to `limit` due jobs for `owner`; returns their ids (already committed)."""
    due = (
        select(FaxJob.id)
        .where(FaxJob.state.in_(FAX_WAITING), FaxJob.next_attempt_at <= now)
        .where(or_(FaxJob.lease_until.is_(None), FaxJob.lease_until < now))
        .order_by(FaxJob.next_attempt_at, FaxJob.id)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    candidates = list(await session.scalars(due))
    claimed: list[int] = []
    for job_id in candidates:
        result = await session.execute(
            update(FaxJob)
            .where(
                FaxJob.id == job_id,
                FaxJob.state.in_(FAX_WAITING),
                or_(FaxJob.lease_until.is_(None), FaxJob.lease_until < now),
            )
            .values(lease_owner=owner, lease_until=now + lease)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(job_id)
    await session.commit()
    return claimed


async def orphaned_jobs(session: AsyncSession, now: datetime) -> list[int]:
    """Jobs a worker left mid-call or mid-render whose lease ran out (that worker died)."""
    rows = await session.scalars(
        select(FaxJob.id).where(
            FaxJob.state.in_((FaxState.RENDERING, FaxState.DIALING, FaxState.SENDING)),
            or_(FaxJob.lease_until.is_(None), FaxJob.lease_until < now),
        )
    )
    return list(rows)


async def take_orphan(
    session: AsyncSession, job_id: int, owner: str, now: datetime, lease: timedelta
) -> bool:
    result = await session.execute(
        update(FaxJob)
        .where(
            and_(
                FaxJob.id == job_id,
                FaxJob.state.in_((FaxState.RENDERING, FaxState.DIALING, FaxState.SENDING)),
                or_(FaxJob.lease_until.is_(None), FaxJob.lease_until < now),
            )
        )
        .values(lease_owner=owner, lease_until=now + lease)
    )
    await session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
