"""The whole Mail2Fax story in one runtime: a mail to fax@ ends as a fax and a "sent" mail."""

from __future__ import annotations

from pathlib import Path

from c2bot.bot.runtime import Runtime
from c2bot.bot.services import Services
from c2bot.handlers import fax
from c2bot.storage.models import Channel
from tests.conftest import World, missing_server, test_settings
from tests.support import spandsp
from tests.support.eslpeer import running_peer
from tests.support.mail import build_mail, running_sink, send_mail

FIXTURES = Path(__file__).parent.parent / "fixtures" / "freeswitch"


async def test_mail_to_fax_is_faxed_and_the_sender_told(
    database_url: str, services: Services, world: World, tmp_path: Path
) -> None:
    if not spandsp.available():
        missing_server("libspandsp2")
    await fax.allow_sender(
        services.context(world.reseller, Channel.SHELL), "scanner@acme.nl", "1001"
    )
    async with running_peer() as peer, running_sink() as sink:
        settings = test_settings(
            database_url,
            C2_ESL_PORT=peer.port,
            C2_SMTP_RELAY=f"127.0.0.1:{sink.port}",
            C2_FAX_SPOOL=str(tmp_path / "spool"),
        )
        runtime = Runtime(settings, ("smtp", "fax", "esl"))
        await runtime.start()
        try:
            assert runtime.mail is not None
            raw = build_mail(
                sender="Scanner <scanner@acme.nl>",
                to="fax@c2.test",
                subject="Fax: 020 123 4567",
                body="Two pages follow.",
                attachments=[("scan.tif", "image/tiff", (FIXTURES / "tx_fax.tif").read_bytes())],
            )
            reply = await send_mail(runtime.mail.port, "scanner@acme.nl", ["fax@c2.test"], raw)
            assert reply.code == 250, reply.text
            told = await sink.wait_for(lambda m: m.recipients == ("scanner@acme.nl",), 60)
        finally:
            await runtime.stop()
    [call] = peer.originates
    assert call.number == "+31201234567" and call.fax.success
    assert call.fax.pages_transferred == 3  # the cover page from the body, then the two pages
    assert told.message["Subject"] == "Fax to +31201234567 sent (3 pages)"
    assert "Remote station:" in told.text and told.message["In-Reply-To"] in raw.decode()
