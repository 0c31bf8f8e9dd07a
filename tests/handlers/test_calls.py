"""`/calls` in the domain layer: who sees, ends and listens in on which live call.

Calls are placed on the Event Socket peer with the accountcode our dialplan sets; the handlers
read them back through a real SwitchPool. World: R100 (reseller) with customers 1001 and 1002,
R200 with 2001.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import calls
from c2bot.handlers.calls import SwitchNotReachable
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import Account, AuditEntry, Channel, SipDevice
from c2bot.switch.esl import SwitchPool
from tests.conftest import World
from tests.support.eslpeer import Channel as PeerChannel
from tests.support.eslpeer import EslPeer, connected_pool, running_peer

START = 1795635484  # the recorded call's created_epoch


@dataclass
class Switch:
    peer: EslPeer
    pool: SwitchPool
    services: Services

    def ctx(self, actor: Actor, seconds_later: int = 75) -> Context:
        moment = datetime.fromtimestamp(START + seconds_later, UTC)
        return replace(self.services.context(actor, Channel.SLACK), clock=lambda: moment)

    def call(self, caller: str, destination: str, account: str, **options: object) -> PeerChannel:
        a_leg = self.peer.place_call(caller, destination, accountcode=account, **options)  # type: ignore[arg-type]
        a_leg.created = START
        return a_leg


@pytest.fixture
async def switch(services: Services) -> AsyncIterator[Switch]:
    async with running_peer() as peer, connected_pool(peer) as pool:
        services.switch = pool
        yield Switch(peer, pool, services)
        services.switch = None


async def add_device(services: Services, account: str, username: str, extension: str) -> None:
    async with services.sessions.begin() as session:
        account_id = await session.scalar(select(Account.id).where(Account.number == account))
        assert account_id is not None
        session.add(
            SipDevice(
                account_id=account_id,
                username=username,
                extension=extension,
                password_sealed="not used here",
            )
        )


async def audit_rows(services: Services, action: str) -> list[AuditEntry]:
    async with services.sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def uuids(reply: calls.Reply) -> list[str]:
    assert reply.table is not None
    return [row[-1] for row in reply.table.rows]


async def test_each_role_sees_its_own_calls(switch: Switch, world: World) -> None:
    """Customer: its account's calls; reseller: its customers' too; staff: every call, also one
    without an accountcode. The row shows caller, destination, MM:SS, state, codecs, account."""
    acme = switch.call("1001-100", "+31201234567", "1001", caller_name="Jan")
    beta = switch.call("1002-100", "+31301234567", "1002")
    other = switch.call("2001-100", "+3225551234", "2001")
    stray = switch.call("9999", "hold", "")
    customer = await calls.list_calls(switch.ctx(world.customer))
    assert customer.title == "1 live call(s)"
    assert customer.table is not None
    assert customer.table.columns == (
        "Caller",
        "Destination",
        "Duration",
        "State",
        "Codecs",
        "Account",
        "UUID",
    )
    assert customer.table.rows == (
        ("Jan <1001-100>", "+31201234567", "01:15", "active", "PCMA", "1001", acme.uuid),
    )
    reseller = await calls.list_calls(switch.ctx(world.reseller))
    assert sorted(uuids(reseller)) == sorted([acme.uuid, beta.uuid])
    other_reseller = await calls.list_calls(switch.ctx(world.reseller2))
    assert uuids(other_reseller) == [other.uuid]
    staff = await calls.list_calls(switch.ctx(world.staff, seconds_later=3725))
    assert sorted(uuids(staff)) == sorted([acme.uuid, beta.uuid, other.uuid, stray.uuid])
    assert staff.table is not None and {row[2] for row in staff.table.rows} == {"62:05"}


async def test_account_filter_is_checked(switch: Switch, world: World) -> None:
    """`account:N` narrows the list, and only to an account the asker may act on."""
    switch.call("1001-100", "+31201234567", "1001")
    beta = switch.call("1002-100", "+31301234567", "1002")
    only_beta = await calls.list_calls(switch.ctx(world.reseller), "1002")
    assert uuids(only_beta) == [beta.uuid]
    assert only_beta.title == "1 live call(s) on account 1002"
    with pytest.raises(NotAllowed):
        await calls.list_calls(switch.ctx(world.customer), "1002")
    empty = await calls.list_calls(switch.ctx(world.reseller2))
    assert empty.title == "No live calls." and empty.table is None


async def test_customer_cannot_hang_up(switch: Switch, world: World) -> None:
    """Hanging up is for resellers and staff: a customer is refused, even on its own call."""
    acme = switch.call("1001-100", "+31201234567", "1001")
    with pytest.raises(NotAllowed, match="Only resellers and support staff can hang up"):
        await calls.hangup_call(switch.ctx(world.customer), acme.uuid)
    assert acme.uuid in switch.peer.channels
    assert not any(c.startswith("api uuid_kill") for c in switch.peer.commands)


async def test_reseller_hangs_up_its_customers_call_audited(switch: Switch, world: World) -> None:
    """A reseller ends its customer's call (both legs go); the audit log says who and which."""
    acme = switch.call("1001-100", "+31201234567", "1001")
    reply = await calls.hangup_call(switch.ctx(world.reseller), acme.uuid)
    assert reply.title == f"Call {acme.uuid} (1001-100 to +31201234567) is hung up."
    assert switch.peer.channels == {}
    [entry] = await audit_rows(switch.services, "call.hangup")
    assert entry.object_id == acme.uuid
    assert entry.actor_label == "Rita"
    assert entry.account_id == world.customer.account_id
    assert entry.details["destination"] == "+31201234567"


async def test_another_resellers_call_is_invisible_and_untouchable(
    switch: Switch, world: World
) -> None:
    """R200 cannot see or end R100's customer's call: it is answered as if it did not exist."""
    acme = switch.call("1001-100", "+31201234567", "1001")
    with pytest.raises(NotFound, match=f"no live call {acme.uuid} that you may see"):
        await calls.hangup_call(switch.ctx(world.reseller2), acme.uuid)
    with pytest.raises(NotFound):
        await calls.barge_call(switch.ctx(world.reseller2), acme.uuid, "200")
    assert acme.uuid in switch.peer.channels
    assert await audit_rows(switch.services, "call.hangup") == []


async def test_unknown_uuid_is_not_found(switch: Switch, world: World) -> None:
    """A uuid that is on no switch is NotFound and nothing is sent to kill."""
    with pytest.raises(NotFound, match="calls list"):
        await calls.hangup_call(switch.ctx(world.staff), "00000000-0000-0000-0000-000000000000")
    assert not any(c.startswith("api uuid_kill") for c in switch.peer.commands)


async def test_reseller_barges_from_its_own_device(switch: Switch, world: World) -> None:
    """Barge rings the asker's own device (by extension) on the account's SIP domain, eavesdrops
    on the B leg so 1 is the caller and 2 the callee, explains the keys, and is audited."""
    await add_device(switch.services, "R100", "R100-200", "200")
    switch.peer.register("R100-200", "R100.sip.localhost")
    acme = switch.call("1001-100", "+31201234567", "1001")
    reply = await calls.barge_call(switch.ctx(world.reseller), acme.uuid, "200")
    originate = switch.peer.originates[-1]
    assert originate.dialstring == "user/R100-200@R100.sip.localhost"
    assert (originate.application, originate.argument) == ("eavesdrop", acme.other_leg)
    assert originate.variables["origination_caller_id_number"] == "1001-100"
    assert "1 to speak to the caller (A leg)" in reply.text
    assert "2 to speak to the callee (B leg)" in reply.text
    assert "3 to speak to both (three-way)" in reply.text
    assert "0 to go back to listening only" in reply.text
    assert reply.title.startswith("Your device R100-200 is listening in")
    [entry] = await audit_rows(switch.services, "call.barge")
    assert entry.details["device"] == "R100-200"
    assert entry.details["eavesdropped"] == acme.other_leg
    assert entry.account_id == world.customer.account_id


async def test_barge_needs_the_askers_own_registered_device(switch: Switch, world: World) -> None:
    """Another account's device is not the asker's; an unregistered device is said so; a
    customer may not barge at all; staff name any device by username."""
    await add_device(switch.services, "R100", "R100-200", "200")
    await add_device(switch.services, "1001", "1001-100", "100")
    acme = switch.call("1001-100", "+31201234567", "1001")
    with pytest.raises(NotFound, match="Your account has no SIP device 100"):
        await calls.barge_call(switch.ctx(world.reseller), acme.uuid, "100")
    with pytest.raises(Invalid, match="R100-200 is not registered"):
        await calls.barge_call(switch.ctx(world.reseller), acme.uuid, "R100-200")
    with pytest.raises(NotAllowed, match="listen in"):
        await calls.barge_call(switch.ctx(world.customer), acme.uuid, "100")
    switch.peer.register("1001-100", "1001.sip.localhost")
    reply = await calls.barge_call(switch.ctx(world.staff), acme.uuid, "1001-100")
    assert switch.peer.originates[-1].dialstring == "user/1001-100@1001.sip.localhost"
    assert "listening in" in reply.title
    assert len(await audit_rows(switch.services, "call.barge")) == 1


async def test_one_party_call_is_barged_on_its_only_leg(switch: Switch, world: World) -> None:
    """A call with no B leg (an IVR, a recording) is eavesdropped on its A leg, and the reply
    says that 2 speaks to the caller."""
    await add_device(switch.services, "R100", "R100-200", "200")
    switch.peer.register("R100-200", "R100.sip.localhost")
    ivr = switch.call("1001-100", "1800", "1001", bridged=False, application=("record", "x.wav"))
    reply = await calls.barge_call(switch.ctx(world.reseller), ivr.uuid, "R100-200")
    assert switch.peer.originates[-1].argument == ivr.uuid
    assert "press 2 to speak to the caller" in reply.text


async def test_no_switch_is_refused_clearly(services: Services, world: World) -> None:
    """Without the Event Socket part there is no switch: every verb says so."""
    ctx = services.context(world.staff, Channel.SHELL)
    for attempt in (
        calls.list_calls(ctx),
        calls.hangup_call(ctx, "e5a1c0de-0000-4000-8000-00000000e51a"),
        calls.barge_call(ctx, "e5a1c0de-0000-4000-8000-00000000e51a", "200"),
    ):
        with pytest.raises(SwitchNotReachable, match="switch is not reachable"):
            await attempt


async def test_switch_down_is_refused_clearly(services: Services, world: World) -> None:
    """A switch that does not answer is 'not reachable right now', not 'no calls'."""
    async with connected_pool(down=1) as pool:
        services.switch = pool
        try:
            with pytest.raises(SwitchNotReachable, match="not reachable right now"):
                await calls.list_calls(services.context(world.staff, Channel.SHELL))
        finally:
            services.switch = None
