"""Customers: made with the platform's fields and a first device, checked field by field, by
who may make them; listed, shown, changed, suspended, audited; imported from CSV, whole or not
at all."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers import customers
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.customers import DeviceWanted, NewCustomer
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.fax import password_matches
from c2bot.storage.crypto import unseal
from c2bot.storage.models import (
    Account,
    AuditEntry,
    Channel,
    Person,
    RateGroup,
    Role,
    RoutingChange,
    SipDevice,
)
from tests.conftest import World

GOOD = {
    "number": "1003",
    "company": "Gamma BV",
    "email": "Office@Gamma.nl",
    "first-name": "Greta",
    "last-name": "Gamma",
    "phone": "+31 20 123 4567",
    "mobile": "+31612345678",
    "address": "Damrak 1",
    "city": "Amsterdam",
    "province": "Noord-Holland",
    "zip": "1012 LG",
    "billing": "postpaid",
    "balance": "25.50",
    "credit-limit": "100",
    "channels": "4",
    "cps": "2",
    "translation": '"0031/0","00/+"',
    "out-callerid": "0/+31",
    "in-callerid": "+31/0",
    "password": "Gamma2024x",
    "rategroup": "retail",
}


def ctx(services: Services, actor: Actor, channel: Channel = Channel.SHELL) -> Context:
    return services.context(actor, channel)


async def groups(services: Services) -> None:
    """R100 sells at `retail`; the carrier at `wholesale`; R200 at `other-retail`."""
    async with services.sessions.begin() as session:
        ids = {
            a.number: a.id
            for a in await session.scalars(select(Account).where(Account.number.like("R%")))
        }
        session.add_all(
            [
                RateGroup(name="retail", account_id=ids["R100"]),
                RateGroup(name="other-retail", account_id=ids["R200"]),
                RateGroup(name="wholesale", account_id=None),
            ]
        )


async def account(services: Services, number: str) -> Account:
    async with services.sessions() as session:
        found = await session.scalar(select(Account).where(Account.number == number))
        assert found is not None
        return found


async def audit(services: Services, action: str) -> list[AuditEntry]:
    async with services.sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


async def count(services: Services, model: Any) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_reseller_makes_a_customer_with_every_field_and_a_device(
    services: Services, world: World
) -> None:
    await groups(services)
    request = NewCustomer(GOOD, device=DeviceWanted("", ""))
    made = await customers.new_customer(ctx(services, world.reseller), request)
    assert (made.number, made.reseller, made.generated_number) == ("1003", "R100", False)
    stored = await account(services, "1003")
    assert (stored.company, stored.email, stored.first_name, stored.zip_code) == (
        "Gamma BV",
        "office@gamma.nl",
        "Greta",
        "1012 LG",
    )
    assert (stored.balance, stored.credit_limit) == (Decimal("25.5"), Decimal(100))
    assert (stored.billing, stored.max_channels, stored.cps, stored.status) == (
        "postpaid",
        4,
        2,
        "active",
    )
    assert stored.number_translation == '"0031/0","00/+"'
    assert stored.out_callerid_translation == '"0/+31"'
    assert stored.password_hash is not None and stored.password_hash.startswith("scrypt$")
    assert "Gamma2024x" not in stored.password_hash
    assert password_matches(stored.password_hash, "Gamma2024x")
    assert not password_matches(stored.password_hash, "Gamma2024y")
    async with services.sessions() as session:
        group = await session.get(RateGroup, stored.rate_group_id)
        device = await session.scalar(select(SipDevice).where(SipDevice.account_id == stored.id))
        change = await session.scalar(select(RoutingChange))
    assert group is not None and group.name == "retail"
    assert device is not None and (device.username, device.extension) == ("1003-100", "100")
    assert change is not None and change.object_key == "1003-100"  # `/route undo` knows it
    assert made.device is not None
    password = unseal(services.settings, device.password_sealed)
    text = reply_text(made.reply(show_password=True))
    assert password in text and "Customer 1003 (Gamma BV) added under reseller R100." in text
    assert password not in reply_text(made.reply(show_password=False))
    [entry] = await audit(services, "customer.new")
    assert entry.object_id == "1003" and entry.details["reseller"] == "R100"
    assert "Gamma2024x" not in repr([e.details for e in await audit(services, "customer.new")])


async def test_every_problem_is_named_at_its_field_and_nothing_is_made(
    services: Services, world: World
) -> None:
    bad = GOOD | {
        "email": "not-an-email",
        "balance": "-5",
        "channels": "two",
        "translation": "0031",
        "password": "short1",
        "phone": "call me",
    }
    with pytest.raises(Invalid) as refused:
        await customers.new_customer(ctx(services, world.reseller), NewCustomer(bad))
    fields = refused.value.fields
    assert set(fields) == {"email", "balance", "channels", "translation", "password", "phone"}
    assert fields["balance"].startswith("cannot be negative")
    assert "has no `/`" in fields["translation"]
    assert fields["password"] == "8 to 128 characters"
    assert "Balance: cannot be negative" in refused.value.message
    for password, why in [("longpassword", "letters and digits"), ("ab1003cdef", "number")]:
        with pytest.raises(Invalid) as weak:
            await customers.new_customer(
                ctx(services, world.reseller), NewCustomer(GOOD | {"password": password})
            )
        assert why in weak.value.fields["password"]
    with pytest.raises(Invalid) as device:
        await customers.new_customer(
            ctx(services, world.reseller),
            NewCustomer(GOOD | {"rategroup": ""}, device=DeviceWanted("", "short")),
        )
    assert set(device.value.fields) == {"sip-password"}
    assert await count(services, Account) == 5 and await count(services, SipDevice) == 0


async def test_who_may_make_customers_and_where(services: Services, world: World) -> None:
    """A customer makes none; a reseller only under itself, at its own rate groups; only staff
    make resellers."""
    await groups(services)
    plain = {"number": "1009", "company": "X BV", "email": "x@x.nl"}
    with pytest.raises(NotAllowed):
        await customers.new_customer(ctx(services, world.customer), NewCustomer(plain))
    with pytest.raises(NotAllowed, match="may not act on that account"):
        await customers.new_customer(
            ctx(services, world.reseller), NewCustomer(plain, reseller="R200")
        )
    with pytest.raises(Invalid) as group:
        await customers.new_customer(
            ctx(services, world.reseller), NewCustomer(plain | {"rategroup": "other-retail"})
        )
    assert group.value.fields == {"rate_group": "not a rate group of the seller"}
    with pytest.raises(NotAllowed, match="Only support staff make resellers"):
        await customers.new_customer(
            ctx(services, world.reseller), NewCustomer(plain, role="reseller")
        )
    with pytest.raises(Invalid) as claimed:  # mail from it would speak for another account
        await customers.new_customer(
            ctx(services, world.reseller), NewCustomer(plain | {"email": "piet@other.nl"})
        )
    assert claimed.value.fields == {"email": "belongs to another account"}
    assert await count(services, Account) == 5
    staff = ctx(services, world.staff)
    made = await customers.new_customer(
        staff,
        NewCustomer(
            {"company": "Third Reseller", "email": "boss@third.nl", "rategroup": "wholesale"},
            role="reseller",
        ),
    )
    assert made.generated_number and len(made.number) == 10 and made.number.isdigit()
    assert made.reseller is None
    async with services.sessions() as session:
        person = await session.scalar(select(Person).where(Person.email == "boss@third.nl"))
    assert person is not None and person.role is Role.RESELLER
    assert person.account_id == (await account(services, made.number)).id
    under = await customers.new_customer(staff, NewCustomer(plain, reseller="R200"))
    assert under.reseller == "R200"


async def test_a_replayed_request_makes_one_account(services: Services, world: World) -> None:
    """The same kept request (Slack inbox, confirmed mail) makes the same generated number."""
    once = replace(ctx(services, world.reseller), request_ref="slack:inbox:7")
    request = NewCustomer({"company": "Once BV", "email": "once@once.nl"})
    made = await customers.new_customer(once, request)
    with pytest.raises(Invalid, match=f"Account {made.number} already exists"):
        await customers.new_customer(once, request)
    assert await count(services, Account) == 6


async def test_edit_by_the_seller_and_by_the_account_itself(
    services: Services, world: World
) -> None:
    await groups(services)
    reseller = ctx(services, world.reseller)
    reply = await customers.edit_customer(
        reseller, "1001", {"balance": "10", "rategroup": "retail", "cps": "5"}
    )
    assert reply.title == "Account 1001: balance, CPS, rate group changed."
    assert (await customers.edit_customer(reseller, "1001", {"cps": "5"})).title.startswith(
        "Nothing to change"
    )
    mine = ctx(services, world.customer)
    await customers.edit_customer(mine, "1001", {"phone": "+31201110000", "password": "Acme12345"})
    with pytest.raises(NotAllowed, match="Balance of account 1001 are set by its seller"):
        await customers.edit_customer(mine, "1001", {"balance": "1000"})
    with pytest.raises(NotAllowed):
        await customers.edit_customer(ctx(services, world.reseller2), "1001", {"phone": "1"})
    with pytest.raises(Invalid) as fixed:
        await customers.edit_customer(reseller, "1001", {"number": "9"})
    assert fixed.value.fields == {"number": "cannot be changed"}
    with pytest.raises(Invalid):
        await customers.edit_customer(reseller, "1001", {"rategroup": "other-retail"})
    stored = await account(services, "1001")
    assert (stored.balance, stored.cps, stored.phone) == (Decimal(10), 5, "+31201110000")
    assert password_matches(stored.password_hash, "Acme12345")
    edits = await audit(services, "customer.edit")
    assert [e.details for e in edits] == [
        {"balance": "10.000000", "cps": "5", "rate_group": "retail"},
        {"phone": "+31201110000", "password": "changed"},
    ]
    await customers.edit_customer(reseller, "1001", {"rategroup": "none"})
    assert (await account(services, "1001")).rate_group_id is None


async def test_suspend_is_for_the_seller_above(services: Services, world: World) -> None:
    reseller = ctx(services, world.reseller)
    with pytest.raises(NotAllowed):
        await customers.set_suspended(ctx(services, world.customer), "1001", True)
    with pytest.raises(NotAllowed):
        await customers.set_suspended(reseller, "R100", True)
    with pytest.raises(NotAllowed):
        await customers.set_suspended(ctx(services, world.reseller2), "1001", True)
    reply = await customers.set_suspended(reseller, "1001", True)
    assert "outbound calls are refused" in reply.title
    assert (await account(services, "1001")).status == "suspended"
    assert "suspended already" in (await customers.set_suspended(reseller, "1001", True)).title
    await customers.set_suspended(ctx(services, world.staff), "1001", False)
    assert (await account(services, "1001")).status == "active"
    assert [e.object_id for e in await audit(services, "customer.suspend")] == ["1001"]
    assert [e.actor_label for e in await audit(services, "customer.unsuspend")] == ["Sam Staff"]


async def test_list_pages_sorts_and_shows_only_what_one_may_see(
    services: Services, world: World
) -> None:
    staff = ctx(services, world.staff)
    for n in range(30):
        await customers.new_customer(
            staff,
            NewCustomer(
                {"number": f"5{n:03d}", "company": f"Bulk {n}", "email": f"b{n}@bulk.nl"}
                | {"balance": str(n)},
                reseller="R100",
            ),
        )
    first = await customers.list_customers(staff)
    assert first.title == "35 account(s), page 1 of 2, by number"
    assert first.table is not None and len(first.table.rows) == 25
    assert "page:2" in first.text
    second = await customers.list_customers(staff, page=2)
    assert second.table is not None and len(second.table.rows) == 10
    richest = await customers.list_customers(staff, sort="balance")
    assert richest.table is not None and richest.table.rows[0][:2] == ("5029", "Bulk 29")
    assert richest.table.rows[0][5] == "29.00"
    mine = await customers.list_customers(ctx(services, world.customer))
    assert mine.table is not None and [r[0] for r in mine.table.rows] == ["1001"]
    other = await customers.list_customers(ctx(services, world.reseller2))
    assert other.table is not None and [r[0] for r in other.table.rows] == ["2001", "R200"]
    with pytest.raises(NotAllowed):
        await customers.list_customers(ctx(services, world.reseller2), reseller="R100")


async def test_show_gives_every_field_and_hides_other_accounts(
    services: Services, world: World
) -> None:
    await customers.new_customer(
        ctx(services, world.reseller), NewCustomer(GOOD | {"rategroup": ""}, DeviceWanted("", ""))
    )
    shown = dict((await customers.show_customer(ctx(services, world.reseller), "1003")).fields)
    assert shown["Balance"] == "25.50" and shown["Credit limit"] == "100.00"
    assert shown["May spend"] == "125.50" and shown["SIP devices"] == "1"
    assert shown["Password"] == "set" and shown["Reseller"] == "R100"
    assert shown["Concurrent calls"] == "4" and shown["Zip/Postal code"] == "1012 LG"
    own = dict((await customers.show_customer(ctx(services, world.customer), "1001")).fields)
    assert own["Concurrent calls"] == "no limit" and own["Password"] == "not set"
    with pytest.raises(NotFound, match="among those you may see"):
        await customers.show_customer(ctx(services, world.customer), "1003")
    with pytest.raises(NotFound):
        await customers.show_customer(ctx(services, world.reseller2), "1001")


HEADER = (
    "Account Number,Password,First Name,Last Name,Company,Phone,Mobile,Email,Address,City,"
    "Province/State,Zip/Postal Code,Number Translation,Out Callerid Translation,"
    "In Callerid Translation,Concurrent Calls,CPS,Balance,Credit Limit,SIP Username,SIP Password"
)


def csv_file(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


async def test_import_a_good_file_in_one_transaction(services: Services, world: World) -> None:
    """Columns by name in any order and case; every row in, with its device."""
    data = csv_file(
        "EMAIL, company ,sip username,Balance,account number,Password,number translation",
        "a@one.nl,One BV,,10,3001,Secret123,0031/0",
        'b@two.nl,"Two, Ltd",two-desk,0.5,3002,,"""00/+"""',
        "c@three.nl,Three BV,,,,,",
        header="",
    )[1:]
    outcome = await customers.import_customers(ctx(services, world.reseller), data)
    assert outcome.ok, outcome.problems
    assert [m.number for m in outcome.made][:2] == ["3001", "3002"]
    assert len(outcome.made[2].number) == 10
    assert all(m.reseller == "R100" for m in outcome.made)
    two = await account(services, "3002")
    assert (two.company, two.balance, two.number_translation) == (
        "Two, Ltd",
        Decimal("0.5"),
        '"00/+"',
    )
    assert password_matches((await account(services, "3001")).password_hash, "Secret123")
    async with services.sessions() as session:
        names = list(await session.scalars(select(SipDevice.username).order_by(SipDevice.id)))
    assert names == ["two-desk"]
    assert "Imported 3 customer(s) in one transaction." in reply_text(outcome.reply())
    assert len(await audit(services, "customer.import")) == 3


async def test_a_bad_file_names_every_bad_row_and_writes_nothing(
    services: Services, world: World
) -> None:
    data = csv_file(
        "3001,Secret123,,,One BV,,,a@one.nl,,,,,,,,,,10,,,",
        "3001,Secret123,,,Again BV,,,b@one.nl,,,,,,,,,,10,,,",
        "1001,,,,Taken BV,,,c@one.nl,,,,,,,,,,,,,",
        "3003,weak,,,Neg BV,,,not-mail,,,,,0031,,,-2,,-1,,,",
        "3004,,,,,,,,,,,,,,,,,,,1001-100x,short",
        "3005,,,,Fine BV,,,fine@one.nl,,,,,,,,,,,,,",
        "3006,,,,Piet BV,,,Piet@Other.nl,,,,,,,,,,,,,",
    )
    outcome = await customers.import_customers(ctx(services, world.reseller), data)
    assert not outcome.ok
    problems = outcome.problems
    lines = {line for line, _ in problems}
    assert lines == {3, 4, 5, 6, 8}
    said = "\n".join(f"{line}: {why}" for line, why in problems)
    assert "3: Account Number 3001 is also on line 2" in said
    assert "4: Account Number 1001 already exists" in said
    assert "5: Balance: cannot be negative" in said
    assert "5: Concurrent Calls: cannot be negative" in said
    assert "5: Email: not an email address" in said
    assert "5: Password: 8 to 128 characters" in said
    assert "5: Number Translation: Rule 1 (0031) has no `/`" in said
    assert "6: Email: needed" in said and "6: Company: give a company or a name" in said
    assert "6: SIP Password: too weak" in said
    assert "8: Email piet@other.nl already belongs to another account" in said
    text = reply_text(outcome.reply())
    assert "Nothing was imported: 5 of 7 row(s) have problems" in text
    assert await count(services, Account) == 5 and await count(services, SipDevice) == 0


async def test_wrong_headers_are_named(services: Services, world: World) -> None:
    staff = ctx(services, world.staff)
    unknown = await customers.import_customers(staff, csv_file("x@x.nl,1", header="Email,Nickname"))
    assert unknown.problems[0][0] == 1 and "Unknown column 'Nickname'" in unknown.problems[0][1]
    twice = await customers.import_customers(staff, csv_file("x@x.nl,y@y.nl", header="Email,email"))
    assert "Column 'email' is there twice." in twice.problems[0][1]
    missing = await customers.import_customers(
        staff, csv_file("1,X", header="Account Number,Company")
    )
    assert missing.problems == ((1, "The column Email is needed."),)
    old = await customers.import_customers(
        staff, csv_file("1,X,x@x.nl", header="number,company,email")
    )
    assert "Unknown column 'number'" in old.problems[0][1]
    assert await count(services, Account) == 5


async def test_import_resellers_column_and_permissions(services: Services, world: World) -> None:
    """Staff may name a reseller per row; a reseller only itself; a customer imports nothing."""
    data = csv_file("x@x.nl,X BV,R200", "y@y.nl,Y BV,", header="Email,Company,Reseller")
    staff = await customers.import_customers(ctx(services, world.staff), data)
    assert staff.ok and [m.reseller for m in staff.made] == ["R200", None]
    other = csv_file("z@z.nl,Z BV,R200", header="Email,Company,Reseller")
    refused = await customers.import_customers(ctx(services, world.reseller), other)
    assert refused.problems[0][0] == 2
    assert "Reseller R200: You may not act on that account" in refused.problems[0][1]
    with pytest.raises(NotAllowed):
        await customers.import_customers(ctx(services, world.customer), other)
