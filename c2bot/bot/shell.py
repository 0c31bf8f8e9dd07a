"""The shell front door: commands from standard input, one a line, answers as text tables."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from c2bot.bot.commands import run_line
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers.accounts import person_by_slack_id
from c2bot.handlers.context import SHELL_OPERATOR, Actor, Context
from c2bot.handlers.errors import NotFound, Refusal
from c2bot.handlers.replies import ReplyFile
from c2bot.storage.models import Channel

log = logging.getLogger(__name__)
PROMPT = "c2bot> "
QUIT = {"quit", "exit", r"\q"}


async def shell_actor(services: Services, slack_user_id: str | None) -> Actor:
    """`--as U123` acts as that linked user; without it, as the local operator (admin)."""
    if slack_user_id is None:
        return SHELL_OPERATOR
    async with services.sessions() as session:
        person = await person_by_slack_id(session, slack_user_id)
    if person is None:
        raise NotFound(
            f"{slack_user_id} is not linked to an account; link it first with "
            f"`c2bot user link {slack_user_id} --role customer --account ACCOUNT_NUMBER`."
        )
    return Actor.of(person)


async def answer(ctx: Context, line: str) -> tuple[str, bool]:
    """The text answer to one line, and whether it was a refusal or an error."""
    try:
        outcome = await run_line(ctx, line)
    except Refusal as refusal:
        return refusal.message.replace("`", ""), True
    except Exception:
        reference = secrets.token_hex(4)
        log.exception("shell command failed (ref %s): %r", reference, line)
        return f"Sorry, something went wrong (ref {reference}).", True
    reply = outcome.reply
    try:
        saved = await asyncio.to_thread(save_files, ctx.settings.exports_dir, reply.files)
    except OSError as error:
        where = ctx.settings.exports_dir
        return f"{reply_text(reply)}\nCould not save the file(s) in {where}: {error}", True
    return "\n".join([reply_text(reply), *(f"Saved: {path}" for path in saved)]), False


def save_files(folder: Path, files: Sequence[ReplyFile]) -> list[Path]:
    """A reply's files under C2_EXPORTS_DIR, never over an earlier file of the same name."""
    saved: list[Path] = []
    for file in files:
        folder.mkdir(parents=True, exist_ok=True)
        name = Path(file.filename).name or "file"
        target, number = folder / name, 1
        while target.exists():
            target = folder / f"{Path(name).stem}-{number}{Path(name).suffix}"
            number += 1
        target.write_bytes(file.data)
        saved.append(target.resolve())
    return saved


async def run_shell(ctx: Context, lines: Iterable[str], out: TextIO, interactive: bool) -> int:
    """Answer each line; the exit status is 1 if any line was refused or failed."""
    failed = False
    if interactive:
        out.write(
            f"c2bot shell as {ctx.actor.label} ({ctx.actor.role.value}); "
            "`help` lists commands, `quit` leaves.\n" + PROMPT
        )
        out.flush()
    for raw in lines:
        line = raw.strip()
        if line.lower() in QUIT:
            break
        if line and not line.startswith("#"):
            text, refused = await answer(ctx, line)
            failed = failed or refused
            out.write(text + "\n\n")
        if interactive:
            out.write(PROMPT)
        out.flush()
    return 1 if failed else 0


def shell_context(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)
