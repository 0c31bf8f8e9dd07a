"""`c2bot`: serve, shell, db upgrade, account add, user link, import customers, fax."""

from __future__ import annotations

import argparse
import asyncio
import logging
import mimetypes
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from c2bot.bot import billingcommands, ratecommands
from c2bot.bot.render import reply_text
from c2bot.bot.runtime import PARTS, PartError, choose_parts, serve
from c2bot.bot.services import Services
from c2bot.bot.shell import run_shell, shell_actor, shell_context
from c2bot.config.settings import Settings, SettingsError, ensure_secret_key, load_settings
from c2bot.handlers import accounts, customers, fax
from c2bot.handlers.context import SHELL_OPERATOR
from c2bot.handlers.errors import Refusal
from c2bot.handlers.replies import Reply
from c2bot.storage.db import create_engine, upgrade
from c2bot.storage.models import Role
from c2bot.switch.cdr import CdrIntake, import_dir
from c2bot.switch.esl import pool_from_settings
from c2bot.switch.rerate import UnknownAccount, rerate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2bot",
        description="Run a VoIP reseller platform by message: Slack, email and this shell.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_cmd = sub.add_parser("serve", help="run the bot (Slack, HTTP, SMTP)")
    serve_cmd.add_argument(
        "--only", metavar="PARTS", help=f"comma-separated subset of: {','.join(PARTS)}"
    )
    shell_cmd = sub.add_parser("shell", help="type commands as a Slack user would")
    shell_cmd.add_argument(
        "--as",
        dest="as_user",
        metavar="SLACK_USER_ID",
        help="act as this linked Slack user (default: local admin)",
    )
    db_cmd = sub.add_parser("db", help="database maintenance")
    db_cmd.add_argument("action", choices=["upgrade"])
    account = sub.add_parser("account", help="accounts").add_subparsers(
        dest="action", required=True
    )
    add = account.add_parser("add", help="add an account")
    add.add_argument("number", metavar="ACCOUNT_NUMBER")
    add.add_argument("--company", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--reseller", metavar="PARENT_NUMBER")
    add.add_argument("--timezone", default="Europe/Amsterdam")
    add.add_argument("--rate-group", metavar="NAME")
    user = sub.add_parser("user", help="people").add_subparsers(dest="action", required=True)
    link = user.add_parser("link", help="link a Slack user (or an email) to a role and account")
    link.add_argument("slack_user_id", metavar="SLACK_USER_ID", nargs="?")
    link.add_argument("--role", required=True, choices=[r.value for r in Role])
    link.add_argument("--account", metavar="ACCOUNT_NUMBER")
    link.add_argument("--email")
    link.add_argument("--name", default="")
    imports = sub.add_parser("import", help="bulk imports").add_subparsers(
        dest="what", required=True
    )
    customers_cmd = imports.add_parser(
        "customers",
        help="customers from CSV, the platform guide's columns by header name: "
        + customers.GUIDE_HEADER
        + " (and Reseller, Rate Group, Billing, Time Zone); all rows or none",
    )
    customers_cmd.add_argument("file", type=Path, metavar="FILE.csv")
    ratecommands.add_cli(imports)
    cdrs = imports.add_parser("cdr", help="call records mod_json_cdr left in its log-dir")
    cdrs.add_argument("folder", type=Path, metavar="DIR")
    rerate_cmd = sub.add_parser("rerate", help="re-rate stored calls of a period (UTC days)")
    rerate_cmd.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    rerate_cmd.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    rerate_cmd.add_argument("--account", metavar="ACCOUNT_NUMBER")
    _add_fax_commands(sub)
    billingcommands.add_cli(sub)
    return parser


def _add_fax_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    faxes = sub.add_parser("fax", help="faxes: Mail2Fax senders, sending").add_subparsers(
        dest="action", required=True
    )
    allow = faxes.add_parser(
        "allow", help="let an address send faxes by mail (Mail2Fax) for an account"
    )
    allow.add_argument("email", metavar="EMAIL")
    allow.add_argument("--account", required=True, metavar="ACCOUNT_NUMBER")
    allow.add_argument(
        "--smtp-password",
        action="store_true",
        help="also make an SMTP AUTH password for it (printed once)",
    )
    send = faxes.add_parser("send", help="fax files (and/or a text) to one or more numbers")
    send.add_argument("number", metavar="NUMBER", help="fax number(s), comma-separated")
    send.add_argument("files", type=Path, nargs="*", metavar="FILE", help="PDF, TIFF, images...")
    send.add_argument("--account", required=True, metavar="ACCOUNT_NUMBER")
    send.add_argument("--text", help="text to send (a cover page when files are given)")
    send.add_argument("--caller", metavar="NUMBER", help="one of the account's numbers")
    send.add_argument("--caller-name", metavar="NAME", help="the name on the fax's header")


async def _with_services(settings: Settings, work: Callable[[Services], Awaitable[int]]) -> int:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await work(Services(settings=settings, engine=engine))
    finally:
        await engine.dispose()


def _print_reply(reply: Reply) -> None:
    print(reply.title)


async def _account_add(services: Services, args: argparse.Namespace) -> int:
    ctx = shell_context(services, SHELL_OPERATOR)
    _print_reply(
        await accounts.add_account(
            ctx,
            accounts.NewAccount(
                number=args.number,
                company=args.company,
                email=args.email,
                reseller=args.reseller,
                timezone=args.timezone,
                rate_group=args.rate_group,
            ),
        )
    )
    return 0


async def _user_link(services: Services, args: argparse.Namespace) -> int:
    ctx = shell_context(services, SHELL_OPERATOR)
    _print_reply(
        await accounts.link_user(
            ctx,
            accounts.LinkUser(
                slack_user_id=args.slack_user_id,
                role=Role(args.role),
                account=args.account,
                email=args.email,
                name=args.name,
            ),
        )
    )
    return 0


async def _import_customers(services: Services, args: argparse.Namespace) -> int:
    """The whole file checked first; every row in one transaction, or none (exit status 1)."""
    ctx = shell_context(services, SHELL_OPERATOR)
    outcome = await customers.import_customers(ctx, args.file.read_bytes())
    print(reply_text(outcome.reply()), file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


async def _import_cdr(services: Services, args: argparse.Namespace) -> int:
    """Files of mod_json_cdr's log-dir; nothing is moved (a second run stores nothing twice)."""
    intake = CdrIntake(services.sessions, services.settings)
    found = await import_dir(intake, args.folder)
    for name, reason in found.rejected:
        print(f"rejected {name}: {reason}", file=sys.stderr)
    print(
        f"{len(found.stored)} call(s) taken, {len(found.duplicate)} already had, "
        f"{len(found.b_leg)} B leg(s) skipped, {len(found.rejected)} rejected"
    )
    return 1 if found.rejected else 0


async def _rerate(services: Services, args: argparse.Namespace) -> int:
    """`--to` is inclusive: the period ends at the end of that day (UTC)."""
    try:
        start = datetime.combine(date.fromisoformat(args.start), time(), UTC)
        end = datetime.combine(date.fromisoformat(args.end), time(), UTC) + timedelta(days=1)
    except ValueError as error:
        print(f"c2bot: dates as YYYY-MM-DD ({error})", file=sys.stderr)
        return 2
    try:
        done = await rerate(services.sessions, start, end, args.account)
    except UnknownAccount as error:
        print(f"c2bot: {error}", file=sys.stderr)
        return 1
    print(
        f"re-rated {done.calls} call(s) from {args.start} to {args.end}: {done.changed} changed; "
        f"debit {done.debit:+}, cost {done.cost:+}, carrier debit {done.carrier_debit:+}, "
        f"carrier cost {done.carrier_cost:+}; {len(done.balances)} balance(s) corrected"
    )
    return 0


async def _fax_allow(services: Services, args: argparse.Namespace) -> int:
    ctx = shell_context(services, SHELL_OPERATOR)
    reply = await fax.allow_sender(ctx, args.email, args.account, smtp_password=args.smtp_password)
    print(reply_text(reply))
    return 0


def read_fax_file(path: Path) -> fax.FaxFile:
    """A file to fax, its type guessed from its name (the renderer checks its bytes too)."""
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return fax.FaxFile(filename=path.name, content_type=content_type, data=path.read_bytes())


async def _fax_send(services: Services, args: argparse.Namespace) -> int:
    ctx = shell_context(services, SHELL_OPERATOR)
    submission = fax.FaxSubmission(
        numbers=fax.split_numbers(args.number),
        files=[read_fax_file(path) for path in args.files],
        text=args.text,
        account=args.account,
        caller=args.caller,
        caller_name=args.caller_name,
    )
    accepted = await fax.submit_fax(ctx, submission)
    for job, number in accepted.jobs:
        print(f"fax #{job} to {number} queued")
    return 0


async def _shell(services: Services, args: argparse.Namespace) -> int:
    actor = await shell_actor(services, args.as_user)
    # `calls` and a device's registration ask the switch: connect as `serve` does (a line that
    # needs the switch gives a connection still being made a moment; see switch.calls).
    pool = pool_from_settings(services.settings)
    await pool.start()
    services.switch = pool
    try:
        ctx = shell_context(services, actor)
        return await run_shell(ctx, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())
    finally:
        await pool.stop()


async def _db_upgrade(services: Services, args: argparse.Namespace) -> int:
    print("database is up to date")
    return 0


ACTIONS: dict[tuple[str, str | None], Callable[[Services, argparse.Namespace], Awaitable[int]]] = {
    ("account", "add"): _account_add,
    ("user", "link"): _user_link,
    ("import", "customers"): _import_customers,
    ("import", "cdr"): _import_cdr,
    ("import", "rates"): ratecommands.import_from_cli,
    ("rerate", None): _rerate,
    ("shell", None): _shell,
    ("db", "upgrade"): _db_upgrade,
    ("fax", "allow"): _fax_allow,
    ("fax", "send"): _fax_send,
    ("invoices", "generate"): billingcommands.generate_from_cli,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = ensure_secret_key(load_settings())
    except SettingsError as error:
        print(f"c2bot: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            asyncio.run(serve(settings, choose_parts(args.only)))
            return 0
        key = (args.command, getattr(args, "action", None) or getattr(args, "what", None))
        action = ACTIONS[key]
        return asyncio.run(_with_services(settings, lambda s: action(s, args)))
    except PartError as error:
        print(f"c2bot: {error}", file=sys.stderr)
        return 2
    except Refusal as refusal:
        print(f"c2bot: {refusal.message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"c2bot: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
