"""Porting in Slack: the Slack fixtures of tests/bot/slack, plus the port notices wired to them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from c2bot.bot.portnotices import PortNotices
from c2bot.bot.services import Services
from c2bot.bot.slack.app import SlackFrontDoor
from tests.bot.slack.conftest import bot, door, settings, slack

__all__ = ["bot", "door", "notices", "settings", "slack"]


@pytest.fixture
async def notices(services: Services, door: SlackFrontDoor) -> AsyncIterator[PortNotices]:
    """Answers the domain's nudges as the runtime does: Slack cards and lines, and mail."""
    yield PortNotices(services, None, door.kit)
