"""mod_callcenter keeps the queues it loaded: a queue change is pushed to the connected switch
(the strict Event Socket peer models mod_callcenter's `callcenter_config`)."""

from __future__ import annotations

from c2bot.bot.services import Services
from c2bot.handlers import devices, queues, routing_changes
from c2bot.handlers.devices import NewDevice
from c2bot.handlers.queues import AgentChange, QueueFields
from c2bot.storage.models import Channel
from tests.conftest import World
from tests.support.eslpeer import connected_pool, running_peer

QUEUE = "c2-1001-support@default"


def agent(username: str) -> str:
    return f"c2-1001-{username}@default"


async def test_queue_changes_reach_mod_callcenter(services: Services, world: World) -> None:
    customer = services.context(world.customer, Channel.SHELL)
    for ext in ("100", "101"):
        await devices.add_device(customer, NewDevice(ext))
    async with running_peer() as peer, connected_pool(peer) as pool:
        services.switch = pool
        customer = services.context(world.customer, Channel.SHELL)
        added = await queues.add_queue(customer, "support", None, QueueFields(agents=("100",)))
        assert "The switch has the queue as it is now." in added.text
        assert peer.cc_queues == {QUEUE}
        contact = peer.cc_agents[agent("1001-100")]["contact"]
        assert contact.endswith("user/1001-100@1001.sip.localhost")
        assert peer.cc_agents[agent("1001-100")]["status"] == "Available"
        assert peer.cc_tiers == {(QUEUE, agent("1001-100")): "1"}

        await queues.add_agent(customer, AgentChange("support", "101"))
        await queues.remove_agent(customer, AgentChange("support", "100"))
        assert peer.cc_tiers == {(QUEUE, agent("1001-101")): "1"}

        await routing_changes.undo_last(customer)  # agent 100 back, at level 1 again
        assert peer.cc_tiers == {(QUEUE, agent("1001-100")): "1", (QUEUE, agent("1001-101")): "2"}

        removed = await queues.remove_queue(customer, "support", None)
        assert "brings it back" in removed.title
        assert peer.cc_queues == set() and peer.cc_tiers == {}
        services.switch = None

    # With the switch gone, the change is made and the reply says the switch was not told.
    async with connected_pool(down=1) as pool:
        services.switch = pool
        customer = services.context(world.customer, Channel.SHELL)
        added = await queues.add_queue(customer, "sales", None, QueueFields(agents=("101",)))
        assert "Not told yet: fs1 (not connected)" in added.text
        assert "callcenter_config queue reload c2-1001-sales@default" in added.text
        services.switch = None
