"""Telling a running mod_callcenter about a queue change.

The dialplan and the IVRs are asked for per call, but mod_callcenter loads its queues, agents
and tiers once and keeps them. So after a queue changes, every connected switch is told over the
Event Socket: the queue is (re)loaded from our callcenter.conf, agents that left lose their tier,
and the queue's agents are added (or updated) with their contact and level. A switch that is
down learns the queue when it next loads callcenter.conf, which c2bot serves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from c2bot.switch.configuration import QueueAgents
from c2bot.switch.esl import EslClient, SwitchError, SwitchPool

log = logging.getLogger(__name__)

# Answers that mean "it is already as you want it": adding what exists, dropping what is gone.
HARMLESS = ("already exist", "not found", "does not exist", "invalid tier")


async def push_queue(
    pool: SwitchPool | None, queue: str, wanted: QueueAgents | None, previous: Iterable[str]
) -> str:
    """Bring every connected switch's copy of `queue` in line; a sentence for the reply.

    `wanted` is the queue as it is now (None: removed or disabled); `previous` the agent names
    it had before the change.
    """
    if pool is None:
        return ""
    now = {name for name, _, _ in wanted.agents} if wanted else set()
    gone = sorted(set(previous) - now)
    told, failed = [], []
    for name, client in pool.clients.items():
        if client.health().get("state") != "connected":
            failed.append(f"{name} (not connected)")
            continue
        try:
            await _push(client, queue, wanted, gone)
            told.append(name)
        except SwitchError as error:
            log.warning("telling %s about queue %s failed: %s", name, queue, error)
            failed.append(f"{name} ({error})")
    if not failed:
        return "The switch has the queue as it is now."
    return (
        f"Not told yet: {', '.join(failed)}; the queue changes there when FreeSWITCH next loads "
        f"callcenter.conf (`callcenter_config queue reload {queue}`)."
    )


async def _push(client: EslClient, queue: str, wanted: QueueAgents | None, gone: list[str]) -> None:
    for agent in gone:
        await _api(client, f"callcenter_config tier del {queue} {agent}")
    if wanted is None:
        await _api(client, f"callcenter_config queue unload {queue}")
        return
    try:
        await client.api(f"callcenter_config queue reload {queue}")
    except SwitchError:
        await client.api(f"callcenter_config queue load {queue}")  # new to this switch
    for agent, contact, level in wanted.agents:
        await _api(client, f"callcenter_config agent add {agent} callback")
        await client.api(f"callcenter_config agent set contact {agent} {contact}")
        await client.api(f"callcenter_config agent set status {agent} Available")
        await _api(client, f"callcenter_config tier add {queue} {agent} {level} 1")
        await client.api(f"callcenter_config tier set level {queue} {agent} {level}")


async def _api(client: EslClient, command: str) -> None:
    try:
        await client.api(command)
    except SwitchError as error:
        if not any(words in str(error).lower() for words in HARMLESS):
            raise
