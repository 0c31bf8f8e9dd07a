"""FreeSWITCH control over the Event Socket: one client per switch, a pool of them by name."""

from c2bot.switch.esl import (
    DEFAULT_EVENTS,
    EslClient,
    EventStream,
    SwitchError,
    SwitchPool,
    SwitchUnavailable,
    pool_from_settings,
)
from c2bot.switch.wire import EslEvent

__all__ = [
    "DEFAULT_EVENTS",
    "EslClient",
    "EslEvent",
    "EventStream",
    "SwitchError",
    "SwitchPool",
    "SwitchUnavailable",
    "pool_from_settings",
]
