"""Tests for the decide stage of inbound mail: parsing, automatic mail, bounces, reply stripping."""

from __future__ import annotations

import base64
import email
import time
from email import policy
from textwrap import dedent

import pytest

from c2bot.bot.mailparse import (
    MalformedMail,
    automatic_reason,
    bounce_report,
    extract_case_token,
    html_to_text,
    local_part,
    parse_mail,
    strip_reply,
)

TOKEN = "mfrggzdfmztwq2lknnwg23tpobyxe43u"


def wire(text: str) -> bytes:
    """A mail as it arrives over SMTP: dedented, CRLF line ends, UTF-8."""
    return dedent(text).lstrip("\n").replace("\n", "\r\n").encode("utf-8")


GMAIL_DUTCH_REPLY = wire(f"""
    Return-Path: <piet@acme.nl>
    MIME-Version: 1.0
    Date: Tue, 3 Nov 2026 10:12:31 +0100
    References: <a1.c2bot@c2.example>
     <b2.c2bot@c2.example>
    In-Reply-To: <b2.c2bot@c2.example>
    Message-ID: <CAF=xY7q+ZkL@mail.gmail.com>
    Subject: Re: [Case #12] Storing
     =?UTF-8?Q?SIP=2Dtrunk_=E2=80=93_Amsterdam?=
    From: =?UTF-8?Q?Piet_de_Vri=C3=ABs?= <Piet@Acme.NL>
    To: C2 Support <case+{TOKEN}@c2.example>
    Cc: Finance <Finance@acme.nl>, piet@acme.nl
    Content-Type: multipart/alternative; boundary="000000000000a1b2c3"

    --000000000000a1b2c3
    Content-Type: text/plain; charset="UTF-8"
    Content-Transfer-Encoding: quoted-printable

    Hoi Jan,

    Het werkt weer, dank je wel! De nummers 020 123 4567 en 020 123 4568 zijn
    weer bereikbaar.

    Groet,
    Piet

    Op di 3 nov. 2026 om 10:00 schreef C2 Support <
    case+{TOKEN}@c2.example>:

    > Beste Piet,
    >
    > Kunt u bevestigen dat de storing over is?
    >

    --000000000000a1b2c3
    Content-Type: text/html; charset="UTF-8"
    Content-Transfer-Encoding: quoted-printable

    <div dir=3D"ltr">Hoi Jan,<div><br></div><div>Het werkt weer.</div></div>

    --000000000000a1b2c3--
""")

OUTLOOK_DUTCH_REPLY = wire("""
    From: Piet de Vries <piet@acme.nl>
    To: "C2 Support" <support@c2.example>
    Subject: RE: [Case #12] Storing SIP-trunk
    Thread-Topic: [Case #12] Storing SIP-trunk
    Thread-Index: AQHZ1a2b3c4d5e6f7g8h9i0j
    Date: Tue, 3 Nov 2026 09:15:02 +0000
    Message-ID: <AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>
    In-Reply-To: <b2.c2bot@c2.example>
    Content-Language: nl-NL
    Content-Type: text/plain; charset="windows-1252"
    Content-Transfer-Encoding: quoted-printable
    MIME-Version: 1.0

    Goedemiddag,

    De storing is inmiddels verholpen, bedankt voor de snelle reactie. Wij zien =
    weer verkeer op alle trunks, ook in het caf=E9.

    Met vriendelijke groet,

    Piet de Vries
    Acme B.V. | Keizersgracht 1 | 1015 CN Amsterdam
    T +31 20 123 4567

    ________________________________
    Van: C2 Support <support@c2.example>
    Verzonden: dinsdag 3 november 2026 10:00
    Aan: Piet de Vries <piet@acme.nl>
    Onderwerp: [Case #12] Storing SIP-trunk

    Beste Piet,

    Kunt u bevestigen dat de storing over is?
""")

APPLE_MAIL_DUTCH_REPLY = wire(f"""
    From: Marieke Jansen <marieke@bakkerij-jansen.nl>
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: quoted-printable
    Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
    Subject: Re: [Case #31] Factuur oktober
    Date: Tue, 3 Nov 2026 11:02:44 +0100
    In-Reply-To: <c3.c2bot@c2.example>
    To: C2 Support <case+{TOKEN}@c2.example>
    Message-Id: <9F1E2D3C-4B5A-6789-ABCD-EF0123456789@bakkerij-jansen.nl>

    Dat klopt, het bedrag moet =E2=82=AC 45,00 zijn.

    Marieke

    > Op 3 nov. 2026, om 10:00 heeft C2 Support <case+{TOKEN}@c2.example> het volgende geschreven:
    >=20
    > Beste Marieke,
    >=20
    > Klopt het bedrag op de factuur?
""")

HTML_ONLY_MAIL = wire("""
    From: Jan Klant <jan@klant.nl>
    To: support@c2.example
    Subject: Storing
    Message-ID: <html-only-1@klant.nl>
    MIME-Version: 1.0
    Content-Type: text/html; charset=utf-8
    Content-Transfer-Encoding: 8bit

    <html><head><style>p { color: red; }</style><title>x</title></head>
    <body><script>alert("x")</script>
    <p>Beste support,</p>
    <p>Onze telefoons   bellen niet meer uit &amp; in.<br>Getroffen nummers:</p>
    <ul><li>020 123 4567</li><li>020 123 4568</li></ul>
    <p>Zie <a href="https://status.klant.nl/incident/7">het incident</a>.</p>
    <div class="gmail_quote"><div class="gmail_attr">Op di 3 nov. 2026 om 09:00 schreef
    Support &lt;support@c2.example&gt;:<br></div>
    <blockquote class="gmail_quote">Eerder bericht</blockquote></div>
    </body></html>
""")

ATTACHMENTS_MAIL = wire("""
    From: piet@acme.nl
    To: support@c2.example
    Subject: Facturen
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="outer"

    --outer
    Content-Type: multipart/related; boundary="inner"

    --inner
    Content-Type: text/plain; charset=utf-8

    Zie bijlagen.
    --inner
    Content-Type: image/png
    Content-ID: <logo@acme.nl>
    Content-Transfer-Encoding: base64

    iVBORw0KGgo=
    --inner--

    --outer
    Content-Type: application/pdf
    Content-Disposition: attachment; filename*=utf-8''factuur%20m%C3%A4rz%20%E2%82%AC.pdf
    Content-Transfer-Encoding: base64

    JVBERi0xLjQK
    --outer
    Content-Type: image/jpeg; name="=?utf-8?B?w5xiZXJ3ZWlzdW5nIMOpLmpwZw==?="
    Content-Disposition: attachment; filename="=?utf-8?B?w5xiZXJ3ZWlzdW5nIMOpLmpwZw==?="
    Content-Transfer-Encoding: base64

    /9j/4AAQ
    --outer
    Content-Type: text/csv; charset=utf-8
    Content-Disposition: attachment; filename="../../etc/passwd"

    a,b
    --outer--
""")

APPLE_SPLIT_BODY = wire("""
    From: Marieke Jansen <marieke@bakkerij-jansen.nl>
    To: support@c2.example
    Subject: Foto van de kast
    Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
    Content-Type: multipart/mixed; boundary="Apple-Mail=_1"

    --Apple-Mail=_1
    Content-Transfer-Encoding: 7bit
    Content-Type: text/plain; charset=us-ascii

    Hier is de foto van de kast:
    --Apple-Mail=_1
    Content-Disposition: inline; filename=IMG_0001.jpeg
    Content-Type: image/jpeg; name="IMG_0001.jpeg"
    Content-Transfer-Encoding: base64

    /9j/4AAQ
    --Apple-Mail=_1
    Content-Transfer-Encoding: 7bit
    Content-Type: text/plain; charset=us-ascii

    En hier het log van de centrale:
    --Apple-Mail=_1
    Content-Disposition: inline; filename=pbx.log
    Content-Type: text/plain; name="pbx.log"; charset=us-ascii

    10:00 trunk down
    --Apple-Mail=_1--
""")

POSTFIX_DSN = wire("""
    Return-Path: <>
    Received: by mail.c2.example (Postfix)
    \tid 4XyzQ1abcDz; Tue,  3 Nov 2026 10:00:05 +0100 (CET)
    Date: Tue,  3 Nov 2026 10:00:05 +0100 (CET)
    From: MAILER-DAEMON@mail.c2.example (Mail Delivery System)
    Subject: Undelivered Mail Returned to Sender
    To: bounces@c2.example
    Auto-Submitted: auto-replied
    MIME-Version: 1.0
    Content-Type: multipart/report; report-type=delivery-status;
    \tboundary="4XyzQ1abcDz.1793696405/mail.c2.example"
    Content-Transfer-Encoding: 8bit
    Message-Id: <20261103090005.4XyzQ1abcDz@mail.c2.example>

    This is a MIME-encapsulated message.

    --4XyzQ1abcDz.1793696405/mail.c2.example
    Content-Description: Notification
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    This is the mail system at host mail.c2.example.

    I'm sorry to have to inform you that your message could not
    be delivered to one or more recipients. It's attached below.

    <piet@acme.nl>: host mx.acme.nl[192.0.2.10] said: 550 5.1.1 <piet@acme.nl>:
        Recipient address rejected: User unknown in virtual mailbox table (in reply
        to RCPT TO command)

    --4XyzQ1abcDz.1793696405/mail.c2.example
    Content-Description: Delivery report
    Content-Type: message/delivery-status

    Reporting-MTA: dns; mail.c2.example
    X-Postfix-Queue-ID: 4XyzQ1abcDz
    X-Postfix-Sender: rfc822; support@c2.example
    Arrival-Date: Tue,  3 Nov 2026 10:00:01 +0100 (CET)

    Final-Recipient: rfc822; Piet@Acme.nl
    Original-Recipient: rfc822;piet@acme.nl
    Action: failed
    Status: 5.1.1
    Remote-MTA: dns; mx.acme.nl
    Diagnostic-Code: smtp; 550 5.1.1 <piet@acme.nl>: Recipient address rejected:
        User unknown in virtual mailbox table

    Final-Recipient: rfc822; finance@acme.nl
    Action: delayed
    Status: 4.4.1
    Diagnostic-Code: X-Postfix; connect to mx2.acme.nl[192.0.2.11]:25: Connection
        timed out

    --4XyzQ1abcDz.1793696405/mail.c2.example
    Content-Description: Undelivered Message Headers
    Content-Type: text/rfc822-headers
    Content-Transfer-Encoding: 8bit

    Return-Path: <support@c2.example>
    From: C2 Support <support@c2.example>
    To: piet@acme.nl, finance@acme.nl
    Subject: [Case #12] Storing SIP-trunk
    Message-ID: <5f2c0e9a41b7.c2bot@c2.example>
    Auto-Submitted: auto-replied

    --4XyzQ1abcDz.1793696405/mail.c2.example--
""")

DELAY_ONLY_DSN = wire("""
    From: MAILER-DAEMON@mail.c2.example (Mail Delivery System)
    Subject: Delayed Mail (still being retried)
    To: bounces@c2.example
    Auto-Submitted: auto-replied
    MIME-Version: 1.0
    Content-Type: multipart/report; report-type=delivery-status; boundary="b"

    --b
    Content-Type: text/plain

    Still trying.
    --b
    Content-Type: message/delivery-status

    Reporting-MTA: dns; mail.c2.example

    Final-Recipient: rfc822; finance@acme.nl
    Action: delayed
    Status: 4.4.1

    --b--
""")

OUT_OF_OFFICE = wire("""
    From: Piet de Vries <piet@acme.nl>
    To: C2 Support <support@c2.example>
    Subject: Automatisch antwoord: [Case #12] Storing SIP-trunk
    Auto-Submitted: auto-replied
    X-Auto-Response-Suppress: All
    Content-Type: text/plain; charset=utf-8

    Ik ben tot en met 10 november afwezig.
""")

LIST_MAIL = wire("""
    From: VoIP Nieuws <nieuws@voip-nieuws.nl>
    To: support@c2.example
    Subject: Nieuwsbrief november
    List-Id: VoIP Nieuws <nieuws.voip-nieuws.nl>
    List-Unsubscribe: <mailto:unsubscribe@voip-nieuws.nl>
    Content-Type: text/plain

    Het laatste nieuws.
""")

PLAIN_MAIL = wire("""
    From: Jan Klant <jan@klant.nl>
    To: support@c2.example
    Subject: Vraag over mijn factuur
    Auto-Submitted: no
    Message-ID: <q1@klant.nl>
    Content-Type: text/plain; charset=utf-8

    Waarom is mijn factuur hoger dan vorige maand?
""")


def test_gmail_dutch_reply_headers_are_decoded() -> None:
    """A Gmail reply yields decoded sender, folded subject, recipients and thread ids."""
    mail = parse_mail(GMAIL_DUTCH_REPLY, "piet@acme.nl")
    assert mail.from_addr == "piet@acme.nl"
    assert mail.from_name == "Piet de Vriës"
    assert mail.subject == "Re: [Case #12] Storing SIP-trunk – Amsterdam"
    assert mail.to == (f"case+{TOKEN}@c2.example", "finance@acme.nl", "piet@acme.nl")
    assert mail.message_id == "<CAF=xY7q+ZkL@mail.gmail.com>"
    assert mail.in_reply_to == ("<b2.c2bot@c2.example>",)
    assert mail.references == ("<a1.c2bot@c2.example>", "<b2.c2bot@c2.example>")
    assert mail.automatic_reason is None
    assert mail.bounce is None
    assert mail.attachments == ()


def test_gmail_dutch_reply_with_wrapped_header_is_stripped() -> None:
    """The plain part wins; the wrapped "Op ... schreef" header, quote and sign-off are cut."""
    mail = parse_mail(GMAIL_DUTCH_REPLY, "piet@acme.nl")
    assert mail.body_text.startswith("Hoi Jan,\n\nHet werkt weer, dank je wel!")
    assert strip_reply(mail.body_text) == (
        "Hoi Jan,\n\nHet werkt weer, dank je wel! De nummers 020 123 4567 en 020 123 4568 zijn\n"
        "weer bereikbaar."
    )


def test_outlook_dutch_reply_is_stripped() -> None:
    """An Outlook "Van:/Verzonden:/Aan:/Onderwerp:" block, its rule and the signature go."""
    mail = parse_mail(OUTLOOK_DUTCH_REPLY, "piet@acme.nl")
    assert "ook in het café." in mail.body_text
    assert mail.subject == "RE: [Case #12] Storing SIP-trunk"
    assert strip_reply(mail.body_text) == (
        "Goedemiddag,\n\nDe storing is inmiddels verholpen, bedankt voor de snelle reactie. "
        "Wij zien weer verkeer op alle trunks, ook in het café."
    )


def test_apple_mail_dutch_reply_is_stripped() -> None:
    """Apple Mail's quoted "Op ..., om ... heeft ... het volgende geschreven:" block goes."""
    mail = parse_mail(APPLE_MAIL_DUTCH_REPLY, "marieke@bakkerij-jansen.nl")
    assert mail.message_id == "<9F1E2D3C-4B5A-6789-ABCD-EF0123456789@bakkerij-jansen.nl>"
    assert strip_reply(mail.body_text) == "Dat klopt, het bedrag moet € 45,00 zijn.\n\nMarieke"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Prima.\n\nOp 03-11-2026 10:00 heeft Jan het volgende geschreven:\n\n> oud\n",
            "Prima.",
            id="outlook-mobile",
        ),
        pytest.param(
            "Prima.\n\nOp 3 nov. 2026, om 10:00 heeft Jan Jansen <jan@acme.nl> het\n"
            "volgende geschreven:\n\n> oud\n",
            "Prima.",
            id="apple-wrapped",
        ),
        pytest.param(
            "Prima.\n\nVerzonden vanaf mijn iPhone\n\n"
            "> Op 3 nov. 2026 om 10:00 heeft Jan het volgende geschreven:\n> oud\n",
            "Prima.",
            id="iphone",
        ),
        pytest.param(
            "Done.\n\nOn Tue, Nov 3, 2026 at 10:00 AM Jan Jansen <jan@acme.nl>\nwrote:\n\n> old\n",
            "Done.",
            id="gmail-english",
        ),
        pytest.param(
            "Klopt.\n\n-----Oorspronkelijk bericht-----\nVan: Support\nDatum: gisteren\n\noud\n",
            "Klopt.",
            id="outlook-original-message-dutch",
        ),
        pytest.param(
            "Klopt.\n\n________________________________\nVan: Support <s@c2.example> Verzonden: "
            "dinsdag 3 november 2026 10:00 Aan: Piet Onderwerp: RE: x\n\noud\n",
            "Klopt.",
            id="outlook-one-line-block",
        ),
        pytest.param(
            "Done.\r\n\r\n-----Original Message-----\r\nFrom: Support\r\nSent: Tuesday\r\n"
            "To: Piet\r\nSubject: x\r\n\r\nold\r\n",
            "Done.",
            id="outlook-original-message-crlf",
        ),
        pytest.param("Ja graag.\n\n> Zullen we herstarten?\n> ja\n", "Ja graag.", id="quotes"),
        pytest.param(
            "Het nummer is 020 123 4567.\n\n-- \nPiet de Vries\nAcme\n",
            "Het nummer is 020 123 4567.",
            id="dash-signature",
        ),
        pytest.param(
            "Ja graag.\n\nKind regards,\nPiet\nAcme B.V.\n\nSent from my iPhone\n",
            "Ja graag.",
            id="sign-off-and-sent-from",
        ),
        pytest.param("Het werkt.\n\nGroet Piet\n", "Het werkt.", id="sign-off-with-name"),
    ],
)
def test_strip_reply_removes_headers_quotes_and_signatures(text: str, expected: str) -> None:
    """Each client's reply header, quoted text and signature style is removed."""
    assert strip_reply(text) == expected


def test_strip_reply_keeps_text_the_library_would_drop() -> None:
    """Lines starting "Thanks,", "- item" or "Warning: ... mail" stay (the library cuts them)."""
    text = (
        "Hi,\n\nThanks, that fixed the trunk.\nWarning: mail to the fax address still bounces.\n"
        "- menu 1 gives silence\n- menu 2 works\n\nKind regards,\nPiet\n"
    )
    assert strip_reply(text) == (
        "Hi,\n\nThanks, that fixed the trunk.\nWarning: mail to the fax address still bounces.\n"
        "- menu 1 gives silence\n- menu 2 works"
    )


def test_strip_reply_keeps_indentation() -> None:
    """Pasted configuration keeps its indentation after stripping."""
    text = "Config:\n    sip:\n      port: 5060\n\nOn Tue, Nov 3, 2026 Jan wrote:\n> old\n"
    assert strip_reply(text) == "Config:\n    sip:\n      port: 5060"


def test_strip_reply_keeps_sentence_that_looks_like_a_header() -> None:
    """A sentence "Op maandag schreef ik ...:" without a time is not a reply header."""
    text = "Op maandag schreef ik al dat het niet werkt:\n- lijn 1\n- lijn 2\n"
    assert strip_reply(text) == text.strip()


def test_signature_only_reply_keeps_text() -> None:
    """A reply that is only a sign-off and name is kept whole instead of coming out empty."""
    assert strip_reply("Met vriendelijke groet,\nPiet de Vries\n") == (
        "Met vriendelijke groet,\nPiet de Vries"
    )


def test_quote_only_reply_keeps_text() -> None:
    """A reply with nothing but quoted text keeps the quoted text."""
    assert strip_reply("\n> oude tekst\n> meer\n") == "> oude tekst\n> meer"


def test_strip_reply_long_lines_stay_fast() -> None:
    """A 100 KB line starting "Op " is handled quickly (the library alone takes minutes)."""
    text = "Op 3 " + "x " * 50_000 + "\n\nOn Tue, Nov 3, 2026 Jan wrote:\n> old\n"
    started = time.perf_counter()
    result = strip_reply(text)
    assert time.perf_counter() - started < 5
    assert result == text.split("\n")[0].rstrip()


def test_html_only_mail_is_converted_to_text() -> None:
    """An HTML-only body becomes readable text; scripts, styles and markup are gone."""
    mail = parse_mail(HTML_ONLY_MAIL, "jan@klant.nl")
    assert mail.body_text == (
        "Beste support,\n\n"
        "Onze telefoons bellen niet meer uit & in.\nGetroffen nummers:\n\n"
        "- 020 123 4567\n- 020 123 4568\n\n"
        "Zie het incident (https://status.klant.nl/incident/7).\n\n"
        "Op di 3 nov. 2026 om 09:00 schreef Support <support@c2.example>:\n\n"
        "> Eerder bericht"
    )
    assert strip_reply(mail.body_text).endswith("(https://status.klant.nl/incident/7).")


def test_html_to_text_keeps_preformatted_lines() -> None:
    """Text inside <pre> keeps its line breaks and spacing."""
    assert html_to_text("<p>Log:</p><pre>a  1\n  b 2</pre>") == "Log:\n\na  1\n  b 2"


def test_attachments_with_non_ascii_filenames() -> None:
    """Attachments and inline images come out in mail order with decoded, safe filenames."""
    mail = parse_mail(ATTACHMENTS_MAIL, "piet@acme.nl")
    assert mail.body_text == "Zie bijlagen."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("attachment-1.png", "image/png"),
        ("factuur märz €.pdf", "application/pdf"),
        ("Überweisung é.jpg", "image/jpeg"),
        ("passwd", "text/csv"),
    ]
    assert mail.attachments[0].data == base64.b64decode("iVBORw0KGgo=")
    assert mail.attachments[1].data == b"%PDF-1.4\n"
    assert mail.attachments[3].data == b"a,b"


def test_apple_mail_split_body_keeps_all_text() -> None:
    """Text split around an inline image is joined; a named inline text part is a file."""
    mail = parse_mail(APPLE_SPLIT_BODY, "marieke@bakkerij-jansen.nl")
    assert mail.body_text == "Hier is de foto van de kast:\n\nEn hier het log van de centrale:"
    assert [(a.filename, a.data) for a in mail.attachments] == [
        ("IMG_0001.jpeg", base64.b64decode("/9j/4AAQ")),
        ("pbx.log", b"10:00 trunk down"),
    ]


def test_postfix_dsn_is_a_bounce() -> None:
    """A Postfix RFC 3464 report yields the failed recipient, status and original Message-ID."""
    mail = parse_mail(POSTFIX_DSN, "")
    assert mail.automatic_reason == "empty envelope sender"
    assert mail.bounce is not None
    assert mail.bounce.failed_recipients == ("piet@acme.nl",)
    assert mail.bounce.status == "5.1.1"
    assert mail.bounce.diagnostic == (
        "550 5.1.1 <piet@acme.nl>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert mail.bounce.original_message_id == "<5f2c0e9a41b7.c2bot@c2.example>"
    assert mail.body_text.startswith("This is the mail system at host mail.c2.example.")
    assert mail.attachments == ()


def test_dsn_with_original_message_attached() -> None:
    """The original Message-ID is also found in an attached message/rfc822 part."""
    raw = POSTFIX_DSN.replace(b"Content-Type: text/rfc822-headers", b"Content-Type: message/rfc822")
    bounce = parse_mail(raw, "<>").bounce
    assert bounce is not None
    assert bounce.original_message_id == "<5f2c0e9a41b7.c2bot@c2.example>"


def test_delay_notice_is_not_a_bounce() -> None:
    """A report whose only recipient is delayed is automatic but not a bounce."""
    mail = parse_mail(DELAY_ONLY_DSN, "")
    assert mail.bounce is None
    assert mail.automatic_reason == "empty envelope sender"


def test_bounce_report_ignores_other_reports() -> None:
    """A multipart/report that is not a delivery-status report gives no bounce."""
    raw = DELAY_ONLY_DSN.replace(
        b"report-type=delivery-status", b"report-type=disposition-notification"
    )
    assert bounce_report(email.message_from_bytes(raw, policy=policy.default)) is None


def test_out_of_office_is_automatic() -> None:
    """An out-of-office reply with Auto-Submitted: auto-replied is automatic."""
    mail = parse_mail(OUT_OF_OFFICE, "piet@acme.nl")
    assert mail.automatic_reason == "Auto-Submitted: auto-replied"


def test_list_mail_is_automatic() -> None:
    """Mail with a List-Id header is automatic."""
    assert parse_mail(LIST_MAIL, "bounce-123@voip-nieuws.nl").automatic_reason == "List-Id header"


@pytest.mark.parametrize("envelope_from", ["", "<>", " <> "])
def test_empty_envelope_sender_is_automatic(envelope_from: str) -> None:
    """An empty envelope sender marks otherwise ordinary mail as automatic."""
    assert parse_mail(PLAIN_MAIL, envelope_from).automatic_reason == "empty envelope sender"


@pytest.mark.parametrize(
    ("header", "envelope_from", "reason"),
    [
        ("Precedence: bulk", "jan@klant.nl", "Precedence: bulk"),
        ("Precedence: junk", "jan@klant.nl", "Precedence: junk"),
        ("X-Loop: support@c2.example", "jan@klant.nl", "X-Loop header"),
        ("X-Loop:", "jan@klant.nl", "X-Loop header"),
        ("List-Unsubscribe: <mailto:u@x.nl>", "jan@klant.nl", "List-Unsubscribe header"),
        (
            "Auto-Submitted: auto-generated; owner-email=x@y.nl",
            "jan@klant.nl",
            "Auto-Submitted: auto-generated",
        ),
        ("X-Auto-Response-Suppress: DR, OOF", "jan@klant.nl", "X-Auto-Response-Suppress: DR, OOF"),
        ("X-Mailer: Outlook", "MAILER-DAEMON@mx.klant.nl", "sent by mailer-daemon@mx.klant.nl"),
        ("X-Mailer: Outlook", "postmaster@klant.nl", "sent by postmaster@klant.nl"),
    ],
)
def test_automatic_headers(header: str, envelope_from: str, reason: str) -> None:
    """Each loop-prevention header or daemon sender gives its reason."""
    raw = PLAIN_MAIL.replace(b"Auto-Submitted: no\r\n", header.encode() + b"\r\n")
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert automatic_reason(msg, envelope_from) == reason


def test_ordinary_mail_is_not_automatic() -> None:
    """Plain mail with Auto-Submitted: no is a person writing, not a machine."""
    mail = parse_mail(PLAIN_MAIL, "jan@klant.nl")
    assert mail.automatic_reason is None
    assert mail.body_text == "Waarom is mijn factuur hoger dan vorige maand?"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"\x00\x89\xff\xfe\x13garbage\x01\x02\r\n\xc3\x28\xa0\xa1",
        b"just some text\nthat is not a mail\n",
    ],
)
def test_garbage_is_malformed(raw: bytes) -> None:
    """Bytes without a header block raise MalformedMail with a readable message."""
    with pytest.raises(MalformedMail) as raised:
        parse_mail(raw, "someone@example.com")
    assert raised.value.message
    assert str(raised.value) == raised.value.message


def test_missing_from_is_malformed() -> None:
    """A mail without a From address from a real envelope sender is malformed."""
    raw = PLAIN_MAIL.replace(b"From: Jan Klant <jan@klant.nl>\r\n", b"")
    with pytest.raises(MalformedMail, match="From"):
        parse_mail(raw, "jan@klant.nl")


def test_missing_from_with_empty_envelope_is_accepted() -> None:
    """A daemon's mail with neither From nor envelope sender still parses, as automatic."""
    raw = PLAIN_MAIL.replace(b"From: Jan Klant <jan@klant.nl>\r\n", b"")
    mail = parse_mail(raw, "<>")
    assert mail.from_addr == ""
    assert mail.automatic_reason == "empty envelope sender"


def test_unparseable_from_is_malformed() -> None:
    """A From header without an address counts as no From address."""
    raw = PLAIN_MAIL.replace(b"From: Jan Klant <jan@klant.nl>", b"From: Jan Klant")
    with pytest.raises(MalformedMail):
        parse_mail(raw, "jan@klant.nl")


def test_broken_headers_degrade_instead_of_crashing() -> None:
    """Broken encoded-words and headers that make the stdlib raise are read as raw text."""
    raw = (
        # The stdlib raises AttributeError reading this From; the raw fallback still reads it.
        b"From: =?utf-8?q?J=C3=A9r=C3=B4me?= <Jerome@Klant.nl>, a@[1.2.3\r\n"
        b"To: support@c2.example, =?\r\n"
        b'Cc: "Fran\xc3\xa7ois" <Francois@Klant.nl>\r\n'
        b"Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?b?!!!?= =?x-unknown?q?abc?=\r\n"
        b"Message-ID: <\r\n"
        b"In-Reply-To: b2.c2bot@c2.example\r\n"
        b"Content-Type: text/plain; charset=x-klingon\r\n"
        b"\r\n"
        b"Caf\xc3\xa9 \xff ok\r\n"
    )
    mail = parse_mail(raw, "jerome@klant.nl")
    assert mail.from_addr == "jerome@klant.nl"
    assert mail.from_name == "Jérôme"
    assert mail.to == ("support@c2.example", "francois@klant.nl")
    assert mail.subject.startswith("café")
    assert mail.message_id is None
    assert mail.in_reply_to == ("<b2.c2bot@c2.example>",)
    assert mail.body_text == "Café \ufffd ok"


@pytest.mark.parametrize(
    ("address", "token"),
    [
        (f"case+{TOKEN}@c2.example", TOKEN),
        (f"CASE+{TOKEN.upper()}@C2.Example", TOKEN),
        (f"<case+{TOKEN}@c2.example>", TOKEN),
        (f"case+{TOKEN}@other.example", None),
        (f"case-{TOKEN}@c2.example", None),
        (f"support+{TOKEN}@c2.example", None),
        ("case+short2short@c2.example", None),
        (f"case+{TOKEN}1@c2.example", None),
        (f"case+{'a' * 65}@c2.example", None),
        ("case+@c2.example", None),
        ("case@c2.example", None),
    ],
)
def test_extract_case_token(address: str, token: str | None) -> None:
    """Only case+<16..64 base32 chars>@our-domain yields a token, lowercased."""
    assert extract_case_token(address, "c2.example") == token


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("Support@C2.example", "support"),
        ("bot@c2.example", "bot"),
        ("bot@c2.example.evil.com", None),
        ("bot@evil-c2.example", None),
        ("bot", None),
        ("@c2.example", None),
    ],
)
def test_local_part(address: str, local: str | None) -> None:
    """The local part is returned, lowercased, only for our own domain."""
    assert local_part(address, "C2.Example") == local
