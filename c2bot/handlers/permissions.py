"""The one permission check every handler uses (DESIGN.md "Who is who").

A customer acts on its own account, a reseller on its own and its customers' (any depth below it),
staff and admin on all.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.context import Actor
from c2bot.handlers.errors import NotAllowed
from c2bot.storage.models import Account, Role

MAX_TREE_DEPTH = 16


async def may_act_on(session: AsyncSession, actor: Actor, account_id: int) -> bool:
    if actor.is_staff:
        return True
    if actor.account_id is None:
        return False
    if actor.account_id == account_id:
        return True
    if actor.role is not Role.RESELLER:
        return False
    return actor.account_id in await ancestors(session, account_id)


async def ancestors(session: AsyncSession, account_id: int) -> list[int]:
    """The reseller chain above an account, nearest first."""
    chain: list[int] = []
    current: int | None = account_id
    for _ in range(MAX_TREE_DEPTH):
        current = await session.scalar(select(Account.reseller_id).where(Account.id == current))
        if current is None or current in chain:
            break
        chain.append(current)
    return chain


async def check_account(session: AsyncSession, actor: Actor, account_id: int) -> None:
    """Raise `NotAllowed` unless the actor may act on the account."""
    if not await may_act_on(session, actor, account_id):
        raise NotAllowed("You may not act on that account: it is not yours or your customer's.")


def check_staff(actor: Actor, what: str) -> None:
    if not actor.is_staff:
        raise NotAllowed(f"Only support staff can {what}.")


async def visible_accounts(session: AsyncSession, actor: Actor) -> set[int] | None:
    """Ids of the accounts the actor may see; None means all of them."""
    if actor.is_staff:
        return None
    if actor.account_id is None:
        return set()
    seen = {actor.account_id}
    if actor.role is not Role.RESELLER:
        return seen
    frontier = {actor.account_id}
    while frontier:
        rows = await session.scalars(select(Account.id).where(Account.reseller_id.in_(frontier)))
        frontier = set(rows) - seen
        seen |= frontier
    return seen
