"""`/c2 rategroup|trunk|rate`: rate groups, trunks and rate look-ups, each verb one call into
c2bot.handlers.rates (rate files come in with `c2bot import rates`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tqdm import tqdm

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers import rates
from c2bot.handlers.context import SHELL_OPERATOR, Context
from c2bot.handlers.errors import Refusal
from c2bot.storage.models import Channel


def _name(what: str) -> Param:
    return Param(
        "name", f"the {what}'s name (letters, digits, - _ .)", required=True, positional=True
    )


GROUP_NAME = _name("rate group")
GROUP_PARAMS = (
    Param("markup", "percent added to every rate of the group, e.g. 10"),
    Param("initial-increment", "seconds of a rate's first block when the rate leaves it empty"),
    Param("increment", "seconds of each further block when the rate leaves it empty"),
    Param("description", "a few words on who buys at it"),
    Param("trunks", "the trunks its calls leave by, comma-separated (carrier groups; staff)"),
)
TRUNK_NAME = _name("trunk")
TRUNK_PARAMS = (
    Param("gateway", "the FreeSWITCH gateway calls go out by"),
    Param("failover", "further gateways, comma-separated, tried in order (or none)"),
    Param("channels", "concurrent calls allowed (0: no limit)", integer=True),
    Param("precedence", "lower goes first among trunks that cost the same", integer=True),
    Param("status", "active or inactive", ("active", "inactive")),
    Param("provider", "the carrier behind it"),
)


def _group_changes(inv: Invocation) -> rates.GroupChanges:
    return rates.GroupChanges(
        markup=inv.get("markup"),
        initial_increment=inv.get("initial-increment"),
        increment=inv.get("increment"),
        description=inv.get("description"),
        trunks=inv.get("trunks"),
    )


def _trunk_changes(inv: Invocation) -> rates.TrunkChanges:
    return rates.TrunkChanges(
        gateway=inv.get("gateway"),
        failover=inv.get("failover"),
        channels=inv.get("channels"),
        precedence=inv.get("precedence"),
        status=inv.get("status"),
        provider=inv.get("provider"),
    )


async def _group_add(ctx: Context, inv: Invocation) -> Result:
    return await rates.add_group(ctx, inv.need("name"), _group_changes(inv), inv.get("account"))


async def _group_edit(ctx: Context, inv: Invocation) -> Result:
    return await rates.edit_group(ctx, inv.need("name"), _group_changes(inv))


async def _group_list(ctx: Context, inv: Invocation) -> Result:
    return await rates.list_groups(ctx)


async def _group_show(ctx: Context, inv: Invocation) -> Result:
    return await rates.show_group(ctx, inv.need("name"))


RATEGROUP = Command(
    "c2 rategroup",
    "rate groups: the prices accounts buy at (markup, default increments, trunks)",
    (
        Verb(
            "add",
            "add a rate group (staff: the carrier's; a reseller: its own, for its customers)",
            _group_add,
            params=(
                GROUP_NAME,
                *GROUP_PARAMS,
                Param("account", "staff: the reseller the group belongs to"),
            ),
        ),
        Verb("list", "rate groups you may see", _group_list),
        Verb("show", "a rate group, its settings and first rates", _group_show, (GROUP_NAME,)),
        Verb("edit", "change a rate group's settings", _group_edit, (GROUP_NAME, *GROUP_PARAMS)),
    ),
    examples=(
        'c2 rategroup add wholesale markup:0 increment:1 description:"resellers" trunks:alpha,beta',
        "c2 rategroup add retail markup:15 initial-increment:30 increment:6",
        "c2 rategroup edit retail markup:12.5",
    ),
)


async def _trunk_add(ctx: Context, inv: Invocation) -> Result:
    return await rates.add_trunk(ctx, inv.need("name"), _trunk_changes(inv))


async def _trunk_edit(ctx: Context, inv: Invocation) -> Result:
    return await rates.edit_trunk(ctx, inv.need("name"), _trunk_changes(inv))


async def _trunk_list(ctx: Context, inv: Invocation) -> Result:
    return await rates.list_trunks(ctx)


async def _trunk_show(ctx: Context, inv: Invocation) -> Result:
    return await rates.show_trunk(ctx, inv.need("name"))


TRUNK = Command(
    "c2 trunk",
    "trunks (staff): the gateways calls leave by, with their termination rates",
    (
        Verb("add", "add a trunk", _trunk_add, params=(TRUNK_NAME, *TRUNK_PARAMS)),
        Verb("list", "all trunks", _trunk_list),
        Verb("show", "a trunk, its settings and first rates", _trunk_show, (TRUNK_NAME,)),
        Verb("edit", "change a trunk", _trunk_edit, params=(TRUNK_NAME, *TRUNK_PARAMS)),
    ),
    examples=(
        'c2 trunk add alpha gateway:gw-alpha failover:gw-alpha2 channels:30 provider:"Alpha"',
        "c2 trunk edit alpha status:inactive",
    ),
)


async def _rate_list(ctx: Context, inv: Invocation) -> Result:
    return await rates.list_rates(
        ctx,
        inv.get("group"),
        prefix=inv.get("prefix"),
        number=inv.get("number"),
        trunk=inv.get("trunk"),
        account=inv.get("account"),
    )


def _whose(inv: Invocation) -> dict[str, str | None]:
    return {"group": inv.get("group"), "account": inv.get("account"), "trunk": inv.get("trunk")}


async def _rate_set(ctx: Context, inv: Invocation) -> Result:
    change = rates.RateChange(
        code=inv.need("code"),
        per_minute=inv.get("per-minute"),
        destination=inv.get("destination"),
        connection=inv.get("connection"),
        grace=inv.get("grace"),
        initial=inv.get("initial"),
        increment=inv.get("increment"),
        strip=inv.get("strip"),
        prepend=inv.get("prepend"),
    )
    return await rates.set_rate(ctx, change, **_whose(inv))


async def _rate_remove(ctx: Context, inv: Invocation) -> Result:
    return await rates.remove_rate(ctx, inv.need("code"), **_whose(inv))


CODE = Param(
    "code", "the destination code: the digits numbers start with", required=True, positional=True
)
WHOSE = (
    Param("group", "a rate group's rates"),
    Param("account", "an account's own rates (they come before its group's)"),
    Param("trunk", "staff: a trunk's termination rates"),
)
RATE = Command(
    "c2 rate",
    "rates: look them up, or set one (a group's, an account's own, a trunk's)",
    (
        Verb(
            "list",
            "rates by code prefix, or the one rate for a number",
            _rate_list,
            params=(
                Param("group", "the rate group", positional=True),
                Param("prefix", "only codes starting with these digits, e.g. 31"),
                Param("number", "the rate that applies to this number (longest prefix)"),
                *WHOSE[1:],
            ),
        ),
        Verb(
            "set",
            "add or change one rate (files: `c2bot import rates`)",
            _rate_set,
            params=(
                CODE,
                *WHOSE,
                Param("per-minute", "price per minute (required for a new rate)"),
                Param("destination", "the destination's name"),
                Param("connection", "connection cost per answered call"),
                Param("grace", "seconds free of charge"),
                Param("initial", "seconds of the first block, or default (the group's)"),
                Param("increment", "seconds of each further block, or default"),
                Param("strip", "trunk rates: digits taken off the front"),
                Param("prepend", "trunk rates: digits put before the number"),
            ),
        ),
        Verb("remove", "remove one rate", _rate_remove, params=(CODE, *WHOSE)),
    ),
    examples=(
        "c2 rate list wholesale prefix:31",
        "c2 rate list r100-retail number:+31612345678",
        "c2 rate list account:1001 number:+31612345678",
        "c2 rate list trunk:alpha prefix:44",
        "c2 rate set 316 group:r100-retail per-minute:0.09 connection:0.01 grace:5 initial:30 "
        'increment:6 destination:"Netherlands Mobile"',
        "c2 rate set 31 account:1001 per-minute:0.015",
        "c2 rate remove 31 account:1001",
    ),
)

C2_OBJECTS: tuple[Command, ...] = (RATEGROUP, TRUNK, RATE)
READ_ONLY_VERBS: frozenset[str] = frozenset()


# --- `c2bot import rates` -------------------------------------------------------------------------


def add_cli(imports: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`c2bot import rates FILE.csv --group NAME | --trunk NAME`."""
    command = imports.add_parser(
        "rates",
        help="rates from CSV (Code,Destination,Connection Cost,Grace Time,Cost / Min,"
        "Initial Increment,Increment; with --trunk also Strip,Prepend); all rows or none",
    )
    command.add_argument("file", type=Path, metavar="FILE.csv")
    into = command.add_mutually_exclusive_group(required=True)
    into.add_argument("--group", metavar="NAME", help="a rate group's origination rates")
    into.add_argument("--trunk", metavar="NAME", help="a trunk's termination rates")


async def import_from_cli(services: Services, args: argparse.Namespace) -> int:
    """The file checked whole, then written with a progress bar on stderr; exit 1 if refused."""
    ctx = services.context(SHELL_OPERATOR, Channel.SHELL)
    path: Path = args.file
    with tqdm(desc=f"importing {path.name}", unit=" rates", file=sys.stderr) as bar:

        def progress(count: int) -> None:
            bar.update(count)

        request = rates.RateImport(
            data=await asyncio.to_thread(path.read_bytes),
            filename=path.name,
            group=args.group,
            trunk=args.trunk,
            progress=progress,
        )
        try:
            reply = await rates.import_rates(ctx, request)
        except Refusal as refusal:
            bar.leave = False
            bar.close()
            print(refusal.message, file=sys.stderr)
            return 1
    print(reply_text(reply))
    return 0
