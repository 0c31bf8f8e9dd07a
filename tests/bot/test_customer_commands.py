"""`c2 customer` through the shared grammar (shell and email): the old `add` still works, `new`
with words, the form's one-line usage, edit and suspend, mail's confirmation and its refusal of
passwords, and `c2bot import customers FILE.csv` with the guide's columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Refusal
from c2bot.storage.crypto import unseal
from c2bot.storage.db import create_engine
from c2bot.storage.models import Account, Channel, SipDevice
from tests.conftest import World, test_settings
from tests.support.mail import build_mail, running_gateway, running_sink, send_mail


async def say(services: Services, actor: Actor, line: str, channel: Channel = Channel.SHELL) -> str:
    return reply_text((await run_line(services.context(actor, channel), line)).reply)


async def stored(services: Services, number: str) -> Account:
    async with services.sessions() as session:
        account = await session.scalar(select(Account).where(Account.number == number))
        assert account is not None
        return account


async def test_old_add_and_new_with_words(services: Services, world: World) -> None:
    text = await say(services, world.staff, "c2 customer add 1003 company:X email:x@x.nl")
    assert "Customer 1003 (X) added." in text
    line = (
        'c2 customer new 1004 company:"Delta BV" email:d@delta.nl balance:12.5 channels:3 '
        'translation:"0031/0","00/+" password:Delta2024 device'
    )
    text = await say(services, world.reseller, line)
    assert "Customer 1004 (Delta BV) added under reseller R100." in text
    async with services.sessions() as session:
        device = await session.scalar(select(SipDevice).where(SipDevice.username == "1004-100"))
    assert device is not None
    assert unseal(services.settings, device.password_sealed) in text  # the shell is the asker's
    delta = await stored(services, "1004")
    assert (str(delta.balance), delta.max_channels) == ("12.500000", 3)
    assert delta.number_translation == '"0031/0","00/+"'
    assert "Delta2024" not in text


async def test_form_usage_edit_list_show_suspend(services: Services, world: World) -> None:
    usage = await say(services, world.reseller, "c2 customer new")
    assert "Give the details in one line" in usage and 'company:"..."' in usage
    imports = await say(services, world.reseller, "c2 customer import")
    assert "c2bot import customers FILE.csv" in imports and "SIP Username" in imports
    edited = await say(services, world.reseller, "c2 customer edit 1001 balance:5 cps:2")
    assert edited == "Account 1001: balance, CPS changed."
    listing = " ".join(
        (await say(services, world.reseller, "c2 customer list sort:balance")).split()
    )
    assert "3 account(s), page 1 of 1, by balance" in listing
    assert "1001 Acme BV - active prepaid 5.00 0.00 - R100" in listing
    shown = await say(services, world.customer, "c2 customer show 1001")
    assert "Balance" in shown and "5.00" in shown
    with pytest.raises(Refusal, match="among those you may see"):
        await run_line(services.context(world.customer, Channel.SHELL), "c2 customer show 1002")
    with pytest.raises(Refusal, match="Only the seller"):
        await run_line(services.context(world.customer, Channel.SHELL), "c2 customer suspend 1001")
    assert "suspended" in await say(services, world.reseller, "c2 customer suspend 1001")
    assert (await stored(services, "1001")).status == "suspended"
    assert "active again" in await say(services, world.reseller, "c2 customer unsuspend 1001")
    assert not changes_something("c2 customer show 1001")
    assert not changes_something("c2 customer new")
    assert changes_something("c2 customer suspend 1001")


async def test_by_email_reads_at_once_changes_wait_and_passwords_are_refused(
    services: Services, world: World, database_url: str
) -> None:
    async with running_sink() as sink:
        settings = test_settings(database_url, C2_SMTP_RELAY=f"127.0.0.1:{sink.port}")
        engine = create_engine(settings.database_url)
        try:
            mail_services = Services(settings=settings, engine=engine)
            async with running_gateway(mail_services) as (gateway, _):

                async def send(sender: str, subject: str) -> None:
                    raw = build_mail(sender=sender, to="bot@c2.test", subject=subject, body="")
                    reply = await send_mail(gateway.port, sender, ["bot@c2.test"], raw)
                    assert reply.code == 250

                await send("jan@acme.nl", "c2 customer show 1001")
                shown = await sink.wait_for(lambda m: "show 1001" in str(m.message["Subject"]))
                await send(
                    "rita@resell.nl", "c2 customer new company:Mail email:m@m.nl password:Abc12345"
                )
                refused = await sink.wait_for(lambda m: "[hidden]" in str(m.message["Subject"]))
                await send("rita@resell.nl", "c2 customer suspend 1001")
                asked = await sink.wait_for(lambda m: "suspend 1001" in str(m.message["Subject"]))
        finally:
            await engine.dispose()
    assert "Acme BV" in shown.text and "Balance" in shown.text
    assert "Passwords are not taken by email" in refused.text and "Abc12345" not in refused.text
    assert "reply yes" in asked.text
    assert (await stored(services, "1001")).status == "active"  # until confirmed
    async with services.sessions() as session:
        made = await session.scalar(select(Account).where(Account.company == "Mail"))
    assert made is None


def test_import_customers_from_the_shell(tmp_path: Path) -> None:
    """`c2bot import customers FILE.csv`: a bad file is reported whole and writes nothing; the
    good one goes in."""
    env = {
        "PATH": "/usr/bin:/bin",
        "C2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c2.db'}",
        "C2_CONFIG": str(tmp_path / "c2bot.toml"),
        "C2_MAIL_DOMAIN": "c2.test",
    }

    def c2bot(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "c2bot.bot.cli", *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False
        )

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Account Number,Company,Email,Balance\n"
        "7001,Seven BV,seven@seven.nl,10\n"
        "7001,Seven Again,again@seven.nl,-3\n"
    )
    refused = c2bot("import", "customers", str(bad))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Nothing was imported: 1 of 2 row(s) have problems" in refused.stderr
    assert "3     Account Number 7001 is also on line 2" in refused.stderr
    assert "Balance: cannot be negative" in refused.stderr
    good = tmp_path / "good.csv"
    good.write_text(
        "email,company,account number,SIP Username\n"
        "seven@seven.nl,Seven BV,7001,\n"
        "eight@eight.nl,Eight BV,7002,eight-desk\n"
    )
    done = c2bot("import", "customers", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Imported 2 customer(s) in one transaction." in done.stdout
    assert "eight-desk" in done.stdout
    again = c2bot("import", "customers", str(good))
    assert again.returncode == 1 and "Account Number 7001 already exists" in again.stderr
