"""Tests for composing outgoing mail: headers, threading, loop markers, attachments, subjects."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from c2bot.bot.mailcompose import (
    MAX_REFERENCES,
    case_number_from_subject,
    case_subject,
    compose_mail,
    make_message_id,
)
from c2bot.bot.mailparse import Attachment, parse_mail

TOKEN = "mfrggzdfmztwq2lknnwg23tpobyxe43u"


def round_trip(message: EmailMessage) -> EmailMessage:
    """The message as a relay would receive it: serialised to bytes and parsed again."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def compose_reply(**overrides: object) -> tuple[EmailMessage, str]:
    """A case reply from support to Piet, with `overrides` applied to the arguments."""
    arguments: dict[str, object] = {
        "from_addr": "support@c2.example",
        "from_name": "C2 Support – Team Zuid",
        "to": "Piet de Vries <piet@acme.nl>",
        "subject": "[Case #12] Storing SIP-trunk",
        "body": "Beste Piet,\n\nDe storing is verholpen. Groeten uit Zürich.\n",
        "message_id_domain": "c2.example",
    }
    arguments.update(overrides)
    return compose_mail(**arguments)  # type: ignore[arg-type]


def test_make_message_id_is_unique_and_ours() -> None:
    """Message-IDs are bracketed, carry the c2bot marker and our domain, and never repeat."""
    ids = {make_message_id("c2.example") for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"<[0-9a-f]{32}\.c2bot@c2\.example>", i) for i in ids)


def test_compose_sets_basic_headers_and_utf8_body() -> None:
    """From, To, Subject, Date, Message-ID and a UTF-8 text/plain body survive the wire."""
    message, message_id = compose_reply(reply_to=f"case+{TOKEN}@c2.example")
    parsed = round_trip(message)
    assert parsed["Message-ID"] == message_id
    assert parsed["From"].addresses[0].display_name == "C2 Support – Team Zuid"
    assert parsed["From"].addresses[0].addr_spec == "support@c2.example"
    assert parsed["To"].addresses[0].addr_spec == "piet@acme.nl"
    assert parsed["Reply-To"] == f"case+{TOKEN}@c2.example"
    assert parsed["Subject"] == "[Case #12] Storing SIP-trunk"
    assert parsedate_to_datetime(str(parsed["Date"])).tzinfo is not None
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content() == "Beste Piet,\n\nDe storing is verholpen. Groeten uit Zürich.\n"
    assert all(ord(char) < 128 for char in message.as_string())


def test_compose_leaves_out_headers_not_asked_for() -> None:
    """Without threading or loop arguments none of those headers appear."""
    parsed = round_trip(compose_reply()[0])
    for name in ("Reply-To", "In-Reply-To", "References", "Auto-Submitted", "X-Loop"):
        assert name not in parsed


def test_compose_sets_loop_markers() -> None:
    """Auto-Submitted and X-Loop are set when given, so our own mail is recognised as ours."""
    message, _ = compose_reply(auto_submitted="auto-replied", loop_marker="c2bot@c2.example")
    parsed = round_trip(message)
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Loop"] == "c2bot@c2.example"
    mail = parse_mail(message.as_bytes(), "support@c2.example")
    assert mail.automatic_reason == "Auto-Submitted: auto-replied"


def test_compose_threads_and_caps_references() -> None:
    """In-Reply-To is set, added to References, and References keeps only the last 20 ids."""
    history = [f"<m{n}@c2.example>" for n in range(30)]
    message, _ = compose_reply(in_reply_to="<latest@acme.nl>", references=history)
    parsed = round_trip(message)
    references = str(parsed["References"]).split()
    assert parsed["In-Reply-To"] == "<latest@acme.nl>"
    assert len(references) == MAX_REFERENCES
    assert references[-1] == "<latest@acme.nl>"
    assert references[0] == "<m11@c2.example>"


def test_compose_does_not_repeat_in_reply_to() -> None:
    """An In-Reply-To already in References is not added twice."""
    message, _ = compose_reply(in_reply_to="<b@x>", references=["<a@x>", "<b@x>"])
    assert str(round_trip(message)["References"]).split() == ["<a@x>", "<b@x>"]


def test_compose_folds_newlines_in_subject() -> None:
    """A subject with line breaks cannot inject headers."""
    message, _ = compose_reply(subject="Storing\r\nBcc: victim@example.com")
    parsed = round_trip(message)
    assert parsed["Subject"] == "Storing Bcc: victim@example.com"
    assert "Bcc" not in parsed


def test_compose_with_attachments_is_multipart_mixed() -> None:
    """Attachments turn the mail into multipart/mixed with the text first, names intact."""
    files = [
        Attachment("factuur märz €.pdf", "application/pdf", b"%PDF-1.4\n"),
        Attachment("log.txt", "text/plain", "regel één\n".encode()),
        Attachment("doorgestuurd.eml", "message/rfc822", b"Subject: x\r\n\r\nbody\r\n"),
    ]
    message, _ = compose_reply(attachments=files)
    parsed = round_trip(message)
    assert parsed.get_content_type() == "multipart/mixed"
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().startswith("Beste Piet,")
    mail = parse_mail(message.as_bytes(), "support@c2.example")
    assert [(a.filename, a.content_type, a.data) for a in mail.attachments] == [
        ("factuur märz €.pdf", "application/pdf", b"%PDF-1.4\n"),
        ("log.txt", "text/plain", "regel één\n".encode()),
        ("doorgestuurd.eml", "application/octet-stream", b"Subject: x\r\n\r\nbody\r\n"),
    ]
    assert mail.body_text == "Beste Piet,\n\nDe storing is verholpen. Groeten uit Zürich."


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Storing SIP-trunk", "[Case #12] Storing SIP-trunk"),
        ("Re: [Case #12] Storing", "[Case #12] Storing"),
        ("RE: Antw: Doorst: Storing", "[Case #12] Storing"),
        ("Fw: FWD: Re[2]: Storing", "[Case #12] Storing"),
        ("[Case #12] RE: Storing", "[Case #12] Storing"),
        ("Antw: Storing [case #12]", "[Case #12] Storing"),
        ("Re: [Case #7] Oude storing", "[Case #12] [Case #7] Oude storing"),
        ("Reactie op storing", "[Case #12] Reactie op storing"),
        ("", "[Case #12]"),
        ("Re:", "[Case #12]"),
    ],
)
def test_case_subject(subject: str, expected: str) -> None:
    """The case tag leads once, reply and forward prefixes are dropped."""
    assert case_subject(12, subject) == expected


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("[Case #12] Storing", 12),
        ("Re: [case #345] Storing", 345),
        ("Antw: [Case#7]", 7),
        ("Storing #12", None),
        ("[Case #] Storing", None),
        ("", None),
    ],
)
def test_case_number_from_subject(subject: str, number: int | None) -> None:
    """The number comes from the first [Case #N] tag, and nothing else."""
    assert case_number_from_subject(subject) == number
