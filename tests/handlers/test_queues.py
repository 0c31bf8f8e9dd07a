"""Call queues: mod_callcenter strategies, agents added and removed by message, music on hold
of the account, a failover without loops, removal while in use, undo."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import devices, queues, ringgroups, routing_changes
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.devices import NewDevice
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.queues import AgentChange, QueueFields
from c2bot.storage.models import Account, CallQueue, Channel, Recording
from tests.conftest import World


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def queue(services: Services, name: str = "support") -> CallQueue:
    async with services.sessions() as session:
        found = await session.scalar(select(CallQueue).where(CallQueue.name == name))
        assert found is not None
        return found


def agents(found: CallQueue) -> list[tuple[int, str]]:
    return [(a.position, a.target) for a in found.agents]


async def invalid(work: object) -> Invalid:
    with pytest.raises(Invalid) as refused:
        await work  # type: ignore[misc]
    return refused.value


async def test_add_with_agents_strategy_and_sounds(services: Services, world: World) -> None:
    for ext in ("100", "101"):
        await devices.add_device(ctx(services, world.customer), NewDevice(ext))
    async with services.sessions.begin() as session:
        acme = await session.scalar(select(Account.id).where(Account.number == "1001"))
        assert acme is not None
        session.add(
            Recording(
                account_id=acme, name="jazz", filename="j.wav", sample_rate=8000, duration_ms=1,
                size=1,
            )
        )  # fmt: skip
    fields = QueueFields(
        strategy="ring-all",
        agents=("100", "1001-101", "0612345678"),
        moh="jazz",
        timeout=120,
        failover="pstn +31201234599",
    )
    reply = await queues.add_queue(ctx(services, world.reseller), "support", "1001", fields)
    assert reply.title == "Queue support added to account 1001."
    found = await queue(services)
    assert (found.strategy, found.moh, found.timeout) == ("ring-all", "jazz", 120)
    assert (found.failover_type, found.failover_value) == ("pstn", "+31201234599")
    assert agents(found) == [(1, "1001-100"), (2, "1001-101"), (3, "+31612345678")]
    shown = dict(reply.fields)
    assert shown["Strategy"] == "ring-all: every free agent rings at once"
    assert shown["Failover"] == "pstn +31201234599"
    cases = [
        (QueueFields(strategy="loudest"), {"strategy": "unknown strategy"}),
        (QueueFields(timeout=5), {"timeout": "10 to 7200"}),
        (QueueFields(moh="rock"), {"moh": "no recording rock"}),
        (QueueFields(agents=("100", "102")), {"agent_2": "no device 102"}),
        (QueueFields(failover="ivr none-such"), {"failover": "no IVR none-such"}),
    ]
    for given, errors in cases:
        refused = await invalid(
            queues.edit_queue(ctx(services, world.customer), "support", None, given)
        )
        assert refused.fields == errors, refused.message
    listed = await queues.list_queues(ctx(services, world.customer))
    assert listed.table is not None
    assert listed.table.rows[0][:4] == (
        "support",
        "1001",
        "ring-all",
        "1001-100, 1001-101, +31612345678",
    )


async def test_agents_by_message(services: Services, world: World) -> None:
    customer = ctx(services, world.customer)
    for ext in ("100", "101", "102"):
        await devices.add_device(customer, NewDevice(ext))
    await queues.add_queue(customer, "support", None, QueueFields(agents=("100", "101")))
    added = await queues.add_agent(customer, AgentChange("support", "1001-102"))
    assert added.title == "Queue support (1001): agent 1001-102 added."
    again = await queues.add_agent(customer, AgentChange("support", "102"))
    assert again.title == "102 is already an agent of support."
    removed = await queues.remove_agent(customer, AgentChange("support", "100"))
    assert removed.title == "Queue support (1001): agent 1001-100 removed."
    assert agents(await queue(services)) == [(1, "1001-101"), (2, "1001-102")]
    with pytest.raises(NotFound) as absent:
        await queues.remove_agent(customer, AgentChange("support", "100"))
    assert "100 is not an agent of queue support" in absent.value.message
    # A whole new list keeps who stays (an agent is unique per queue).
    await queues.edit_queue(customer, "support", None, QueueFields(agents=("102", "101", "100")))
    assert agents(await queue(services)) == [(1, "1001-102"), (2, "1001-101"), (3, "1001-100")]
    await routing_changes.undo_last(customer)
    assert agents(await queue(services)) == [(1, "1001-101"), (2, "1001-102")]
    with pytest.raises(NotFound):
        await queues.add_agent(ctx(services, world.other), AgentChange("support", "100"))
    with pytest.raises(NotAllowed):
        await queues.add_agent(ctx(services, world.other), AgentChange("support", "100", "1001"))


async def test_failover_loops_and_removal(services: Services, world: World) -> None:
    """A failover that comes back (queue -> ring group -> queue) is refused with the path; a
    queue that a ring group fails over to is not removed; undo brings a removed one back."""
    customer = ctx(services, world.customer)
    await queues.add_queue(customer, "support", None, QueueFields())
    await ringgroups.add_ring_group(
        customer, "sales", None, ringgroups.RingGroupFields(noanswer="queue support")
    )
    loop = await invalid(
        queues.edit_queue(customer, "support", None, QueueFields(failover="ringgroup sales"))
    )
    assert loop.message.startswith(
        "That would make a loop: queue support -> ring group sales -> queue support."
    )
    used = await invalid(queues.remove_queue(customer, "support", None))
    assert used.message.startswith(
        "Queue support still gets calls from: ring group sales (no answer)"
    )
    await ringgroups.edit_ring_group(
        customer, "sales", None, ringgroups.RingGroupFields(noanswer="none")
    )
    await queues.remove_queue(customer, "support", None)
    with pytest.raises(NotFound):
        await queues.show_queue(customer, "support")
    await routing_changes.undo_last(customer)
    assert (await queue(services)).name == "support"
    nothing = await queues.edit_queue(customer, "support", None, QueueFields(timeout=300))
    assert nothing.title == "Nothing to change: queue support (1001)."
