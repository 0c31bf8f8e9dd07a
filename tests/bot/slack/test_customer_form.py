"""The customer modals, through signed Slack requests and the Web API stand-in: opened by a
word-less `/c2 customer new|import`, refused in place field by field, made before the ack with
the device password shown once in the modal; a CSV import fetched from Slack, whole or none."""

from __future__ import annotations

from sqlalchemy import func, select

from c2bot.handlers.fax import password_matches
from c2bot.storage.crypto import unseal
from c2bot.storage.models import Account, RateGroup, SipDevice, SlackInbox
from tests.bot.slack.conftest import Json, SlackDriver, shown
from tests.conftest import World
from tests.support.slack import view_submission_payload


def typed(value: str | None) -> Json:
    return {"value": {"type": "plain_text_input", "value": value}}


def chosen(value: str) -> Json:
    option = {"text": {"type": "plain_text", "text": value}, "value": value}
    return {"value": {"type": "static_select", "selected_option": option}}


def new_values(**given: str) -> Json:
    """view.state.values of the new-customer modal as a reseller sends it."""
    boxes = [
        "number",
        "password",
        "first-name",
        "last-name",
        "company",
        "email",
        "phone",
        "mobile",
        "address",
        "city",
        "province",
        "zip",
        "balance",
        "credit-limit",
        "channels",
        "cps",
        "translation",
        "out-callerid",
        "in-callerid",
        "sip-username",
        "sip-password",
    ]
    values: Json = {box: typed(given.get(box)) for box in boxes}
    values["rategroup"] = chosen(given.get("rategroup", "none"))
    values["billing"] = chosen(given.get("billing", "prepaid"))
    values["device"] = chosen(given.get("device", "yes"))
    return values


async def submit(bot: SlackDriver, user: str, callback: str, values: Json, view_id: str) -> Json:
    payload = view_submission_payload(user, callback, values, "", view_id=view_id)
    reply = await bot.interact(payload)
    assert reply.status_code == 200
    return reply.json() if reply.content else {}


def block(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


async def retail(bot: SlackDriver) -> None:
    async with bot.services.sessions.begin() as session:
        r100 = await session.scalar(select(Account.id).where(Account.number == "R100"))
        session.add_all([RateGroup(name="retail", account_id=r100), RateGroup(name="carrier")])


async def accounts(bot: SlackDriver) -> int:
    async with bot.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Account)) or 0)


async def test_new_opens_the_platforms_form(bot: SlackDriver, world: World) -> None:
    """A reseller picks one of its rate groups and is not asked for a parent; staff type the
    reseller and choose the role."""
    await retail(bot)
    await bot.command("customer new", "URES", command="/c2", trigger_id="T-res")
    view = (await bot.slack.wait_for("views.open")).params["view"]
    assert view["callback_id"] == "customer_new"
    ids = [b.get("block_id") for b in view["blocks"] if b["type"] == "input"]
    assert ids[:6] == ["number", "password", "first-name", "last-name", "company", "email"]
    assert {"rategroup", "billing", "balance", "credit-limit", "channels", "cps"} <= set(ids)
    assert {"translation", "out-callerid", "in-callerid", "sip-username", "sip-password"} <= set(
        ids
    )
    assert "reseller" not in ids and "role" not in ids
    groups = [o["value"] for o in block(view, "rategroup")["element"]["options"]]
    assert groups == ["none", "retail"]
    await bot.command("customer new", "USTAFF", command="/c2", trigger_id="T-staff")
    staff = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-staff")
    staff_ids = [b.get("block_id") for b in staff.params["view"]["blocks"]]
    assert staff_ids[:2] == ["reseller", "role"]
    assert block(staff.params["view"], "rategroup")["element"]["type"] == "plain_text_input"
    answer = await bot.answer_to("customer new", "UCUST", command="/c2")
    await bot.door.drain()
    assert "Only support staff and resellers can add accounts." in shown(answer)
    assert len(bot.slack.calls_to("views.open")) == 2


async def test_errors_are_shown_next_to_their_fields(bot: SlackDriver, world: World) -> None:
    """Every problem at its box at once; nothing made; a customer is refused in the modal."""
    values = new_values(
        company="Gamma BV",
        email="not-an-email",
        balance="-1",
        translation="0031",
        password="short",
        **{"sip-password": "weak"},
    )
    answer = await submit(bot, "URES", "customer_new", values, "V-bad")
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert errors["email"] == "not an email address"
    assert errors["balance"] == "cannot be negative (-1)"
    assert "has no `/`" in errors["translation"]
    assert errors["password"] == "8 to 128 characters"
    fine = new_values(company="Gamma BV", email="g@gamma.nl", **{"sip-password": "weak"})
    device = await submit(bot, "URES", "customer_new", fine, "V-dev")
    assert device["errors"] == {"sip-password": "too weak"}
    fine |= {"number": typed("1001"), "sip-password": typed(None)}
    taken = await submit(bot, "URES", "customer_new", fine, "V-t")
    assert taken["errors"] == {"number": "already exists"}
    customer = await submit(bot, "UCUST", "customer_new", fine, "V-cust")
    assert "Only support staff and resellers" in customer["errors"]["number"]
    staff = new_values(company="X", email="x@x.nl") | {"reseller": typed("R999")}
    staff |= {"role": chosen("customer")}
    nowhere = await submit(bot, "USTAFF", "customer_new", staff, "V-staff")
    assert nowhere["errors"] == {"reseller": "There is no account R999."}
    await bot.door.drain()
    assert await accounts(bot) == 5
    async with bot.services.sessions() as session:
        assert await session.scalar(select(SlackInbox.id)) is None  # never kept, passwords too


async def test_a_good_submission_shows_the_password_once(bot: SlackDriver, world: World) -> None:
    """Made before the ack; the modal turns into the result with the made SIP password; the
    direct message after it leaves the password out; the portal password is only hashed."""
    await retail(bot)
    values = new_values(
        company="Gamma BV",
        email="g@gamma.nl",
        password="Gamma2024",
        rategroup="retail",
        balance="10",
        channels="2",
        translation='"0031/0"',
    )
    answer = await submit(bot, "URES", "customer_new", values, "V-good")
    assert answer["response_action"] == "update"
    result = shown(answer["view"])
    async with bot.services.sessions() as session:
        account = await session.scalar(select(Account).where(Account.company == "Gamma BV"))
        assert account is not None
        device = await session.scalar(select(SipDevice).where(SipDevice.account_id == account.id))
    assert device is not None and device.username == f"{account.number}-100"
    password = unseal(bot.services.settings, device.password_sealed)
    assert f"Customer {account.number} (Gamma BV) added under reseller R100." in result
    assert password in result and "(generated: 10 random digits)" in result
    assert password_matches(account.password_hash, "Gamma2024")
    assert (account.max_channels, account.number_translation) == (2, '"0031/0"')
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "URES")
    await bot.door.drain()
    assert f"Customer {account.number}" in shown(dm.params)
    assert password not in shown(dm.params) and "Gamma2024" not in shown(dm.params)
    again = await submit(bot, "URES", "customer_new", values, "V-good")  # Slack sent it twice
    assert again["errors"] == {"number": "already exists"}
    assert await accounts(bot) == 6


def file_values(files: list[Json]) -> Json:
    return {"file": {"value": {"type": "file_input", "files": files}}}


async def dm_after(bot: SlackDriver, user: str, before: int) -> str:
    call = await bot.next_call("chat.postMessage", before)
    await bot.door.drain()
    assert call.params["channel"] == user
    return shown(call.params)


async def test_import_a_csv_from_slack(bot: SlackDriver, world: World) -> None:
    """The file comes from Slack with the bot token; a bad file is answered row by row and
    writes nothing; the fixed file goes in, under the reseller."""
    await bot.command("customer import", "URES", command="/c2", trigger_id="T-imp")
    view = (await bot.slack.wait_for("views.open")).params["view"]
    assert view["callback_id"] == "customer_import"
    assert block(view, "file")["element"]["type"] == "file_input"
    assert "SIP Username" in shown(view)
    empty = await submit(bot, "URES", "customer_import", file_values([]), "V-i0")
    assert empty["errors"] == {"file": "Attach one CSV file."}
    customer = await submit(bot, "UCUST", "customer_import", file_values([]), "V-i1")
    assert "Only support staff and resellers" in customer["errors"]["file"]
    bad = bot.slack.host_file(
        "customers.csv",
        b"Email,Company,Account Number,Balance,Nickname\nx@x.nl,X,4001,1,x\n",
        "text/csv",
    )
    before = len(bot.slack.calls_to("chat.postMessage"))
    await submit(bot, "URES", "customer_import", file_values([bad]), "V-i2")
    said = await dm_after(bot, "URES", before)
    assert "Nothing was imported" in said and "Unknown column 'Nickname'" in said
    data = (
        b"email,company,account number,balance,sip username\n"
        b"x@x.nl,X BV,4001,1,\n"
        b"y@y.nl,Y BV,4002,-2,\n"
        b"z@z.nl,Z BV,4001,0,\n"
    )
    before = len(bot.slack.calls_to("chat.postMessage"))
    await submit(
        bot, "URES", "customer_import", file_values([bot.slack.host_file("c.csv", data)]), "V-i3"
    )
    said = await dm_after(bot, "URES", before)
    assert "Nothing was imported: 2 of 3 row(s) have problems" in said
    assert "Balance: cannot be negative" in said and "is also on line 2" in said
    assert await accounts(bot) == 5
    fixed = data.replace(b",-2,", b",2,").replace(b"z@z.nl,Z BV,4001", b"z@z.nl,Z BV,4003")
    before = len(bot.slack.calls_to("chat.postMessage"))
    await submit(
        bot, "URES", "customer_import", file_values([bot.slack.host_file("c.csv", fixed)]), "V-i4"
    )
    said = await dm_after(bot, "URES", before)
    assert "Imported 3 customer(s) in one transaction." in said
    async with bot.services.sessions() as session:
        r100 = await session.scalar(select(Account.id).where(Account.number == "R100"))
        under = list(
            await session.scalars(
                select(Account.number).where(Account.reseller_id == r100).order_by(Account.number)
            )
        )
        kept = list(await session.scalars(select(SlackInbox.kind)))
    assert under == ["1001", "1002", "4001", "4002", "4003"]
    assert kept == ["customer_import"] * 3
