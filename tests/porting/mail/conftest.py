"""Porting by mail: the mail gateway of tests/bot/mail, with the port notices on its outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from c2bot.bot.portnotices import PortNotices
from c2bot.bot.services import Services
from tests.bot.mail.conftest import MailRig, rig, settings, sink

__all__ = ["notices", "rig", "settings", "sink"]


@pytest.fixture
async def notices(services: Services, rig: MailRig) -> AsyncIterator[PortNotices]:
    """Answers the domain's nudges as the runtime does: mail through the rig's outbox."""
    ports = PortNotices(services, rig.outbox)
    yield ports
    await ports.drain()
