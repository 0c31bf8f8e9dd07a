"""Number porting at bot@: the request by mail (confirmed by reply), the letter mailed with its
PDF, the signed letter sent back as a reply attachment, and every step told by mail."""

from __future__ import annotations

import io
import re

import pypdf
from sqlalchemy import select

from c2bot.bot.portnotices import PortNotices
from c2bot.handlers import porting
from c2bot.storage.models import Channel, InboundMail, PortRequest, PortState
from tests.bot.mail.conftest import MailRig
from tests.conftest import World
from tests.porting.conftest import Clock, moved, signed_pdf
from tests.support.mail import SentMail

BOT = "bot@c2.test"
NEW = (
    'port new company:"Acme BV" contact:"Jan Jansen" street:Dorpsstraat house:12 '
    'postcode:1234AB city:Amsterdam donor:KPN numbers:"0201234567,0301234500-0301234599" '
    "date:2026-12-07"
)
CONFIRM_ADDRESS = re.compile(r"^bot\+[a-z2-7]{26}@c2\.test$")


def subject(mail: SentMail) -> str:
    return str(mail.message["Subject"])


def attachments(mail: SentMail) -> list[tuple[str, bytes]]:
    return [(str(a.get_filename()), a.get_content()) for a in mail.message.iter_attachments()]


async def port_by_mail(rig: MailRig) -> tuple[PortRequest, SentMail]:
    """`port new` at bot@, confirmed by reply; returns the request and its letter mail."""
    assert (await rig.send("jan@acme.nl", BOT, NEW)).code == 250
    ask = await rig.sink.wait_for(lambda m: "confirm" in m.text and "port new" in m.text)
    assert (await rig.send("jan@acme.nl", str(ask.message["Reply-To"]), "Re: x", "yes")).code == 250
    answer = await rig.sink.wait_for(lambda m: "Port request #" in m.text and " made" in m.text)
    assert answer.recipients == ("jan@acme.nl",)
    letter = await rig.sink.wait_for(lambda m: "Letter of authorisation to sign" in subject(m))
    async with rig.services.sessions() as session:
        port = await session.scalar(select(PortRequest))
    assert port is not None
    return port, letter


async def test_a_port_asked_by_mail_brings_the_letter_and_takes_it_back_signed(
    rig: MailRig, world: World, clock: Clock, notices: PortNotices
) -> None:
    """Confirmed request -> letter mail with PDF and a reply address; a forged sender and a reply
    without the file change nothing; the signed reply submits it, once."""
    port, letter = await port_by_mail(rig)
    assert port.source.value == "email" and port.state is PortState.DRAFT
    assert letter.recipients == ("jan@acme.nl",)
    assert letter.message["Subject"] == f"[Port #{port.id}] Letter of authorisation to sign"
    reply_to = str(letter.message["Reply-To"])
    assert CONFIRM_ADDRESS.match(reply_to)
    [(name, pdf)] = attachments(letter)
    assert name == f"letter-of-authorisation-port-{port.id}.pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Acme BV" in text and "+31 20 123 4567" in text
    assert "reply to this mail with the signed letter attached" in letter.text

    signed = [("signed.pdf", "application/pdf", signed_pdf())]
    forged = await rig.send("mallory@evil.test", reply_to, "Re: letter", "here", attachments=signed)
    assert forged.code == 250
    refused = await rig.sink.wait_for(lambda m: m.recipients == ("mallory@evil.test",))
    assert "only a reply from that address is taken here" in refused.text
    bare = await rig.send("jan@acme.nl", reply_to, "Re: letter", "Signed, see attached")
    assert bare.code == 250
    await rig.sink.wait_for(lambda m: "There was no signed letter attached" in m.text)
    async with rig.services.sessions() as session:
        untouched = await session.get(PortRequest, port.id)
    assert untouched is not None and untouched.state is PortState.DRAFT

    good = await rig.send("jan@acme.nl", reply_to, "Re: letter", "Signed.", attachments=signed)
    assert good.code == 250
    thanks = await rig.sink.wait_for(lambda m: "Thank you: the signed letter" in m.text)
    assert thanks.recipients == ("jan@acme.nl",)
    news = await rig.sink.wait_for(lambda m: "Signed letter received" in subject(m))
    assert "submitted to KPN" in news.text
    async with rig.services.sessions() as session:
        submitted = await session.get(PortRequest, port.id)
        outcomes = list(await session.scalars(select(InboundMail.outcome).order_by(InboundMail.id)))
    assert submitted is not None and submitted.state is PortState.SUBMITTED
    assert outcomes[-3:] == ["port-letter-refused", "port-letter-refused", "port-letter-signed"]
    again = await rig.send("jan@acme.nl", reply_to, "Re: letter", "again", attachments=signed)
    assert again.code == 550


async def test_each_step_is_mailed_and_completion_says_how_to_route_the_numbers(
    rig: MailRig, world: World, clock: Clock, notices: PortNotices
) -> None:
    port, _ = await port_by_mail(rig)
    await moved(
        rig.services,
        world.staff,
        port.id,
        PortState.ACCEPTED,
        PortState.SCHEDULED,
        PortState.COMPLETED,
        date="2026-12-08",
    )
    subjects = [f"[Port #{port.id}] {s}" for s in ("Accepted by the current operator", "Scheduled")]
    for wanted in subjects:
        await rig.sink.wait_for(lambda m, s=wanted: subject(m) == s)
    done = await rig.sink.wait_for(lambda m: "Done: the numbers are yours" in subject(m))
    assert done.recipients == ("jan@acme.nl",)
    assert "route did set +31201234567 local DEVICE" in done.text
    assert (
        "scheduled for Tue 8 Dec 2026"
        in (await rig.sink.wait_for(lambda m: subject(m).endswith("Scheduled"))).text
    )


async def test_port_sign_and_list_by_mail_are_answered_at_once(
    rig: MailRig, world: World, clock: Clock, notices: PortNotices
) -> None:
    """Reading and explaining need no confirmation: `port sign` tells how to send the file."""
    port, _ = await port_by_mail(rig)
    assert (await rig.send("jan@acme.nl", BOT, f"port sign {port.id}")).code == 250
    how = await rig.sink.wait_for(lambda m: f"port sign {port.id}" in subject(m))
    assert "reply to the mail that brought the letter" in how.text
    assert (await rig.send("jan@acme.nl", BOT, "port list")).code == 250
    listed = await rig.sink.wait_for(lambda m: subject(m) == "Re: port list")
    assert f"#{port.id}" in listed.text and "draft" in listed.text
    assert (await rig.send("piet@other.nl", BOT, f"port show {port.id}")).code == 250
    hidden = await rig.sink.wait_for(lambda m: m.recipients == ("piet@other.nl",))
    assert f"There is no port request #{port.id} you may see." in hidden.text
    ctx = rig.services.context(world.customer, Channel.EMAIL)
    assert (await porting.show_port(ctx, port.id)).state is PortState.DRAFT
