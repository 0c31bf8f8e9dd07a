"""Compose outgoing mail: case replies, acknowledgements and command answers as `EmailMessage`s.

Pure functions: no relay, no database. The caller stores the returned Message-ID so replies
whose reply token was lost can still be threaded.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from c2bot.bot.mailparse import Attachment

MAX_REFERENCES = 20

_CASE_TAG = re.compile(r"\[\s*case\s*#\s*(\d{1,18})\s*\]", re.IGNORECASE)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|fw|fwd|aw|wg|antw|antwoord|doorst|tr|sv|vs)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE
)


def make_message_id(domain: str) -> str:
    """A fresh, unguessable Message-ID of ours: `<hex.c2bot@domain>`."""
    return f"<{secrets.token_hex(16)}.c2bot@{domain}>"


def compose_mail(
    *,
    from_addr: str,
    from_name: str,
    to: str,
    subject: str,
    body: str,
    message_id_domain: str,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto_submitted: str | None = None,
    loop_marker: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> tuple[EmailMessage, str]:
    """A UTF-8 text/plain mail (multipart/mixed with attachments) and its Message-ID.

    `in_reply_to` is appended to `references` when missing, as RFC 5322 asks, and only the
    last `MAX_REFERENCES` ids are kept so long threads do not grow the header without bound.
    """
    message_id = make_message_id(message_id_domain)
    message = EmailMessage(policy=policy.default)
    message["From"] = Address(display_name=from_name, addr_spec=from_addr)
    message["To"] = to
    message["Subject"] = " ".join(subject.split())  # a CR or LF would inject headers
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    optional = {
        "Reply-To": reply_to,
        "In-Reply-To": in_reply_to,
        "References": " ".join(_thread_references(references, in_reply_to)),
        "Auto-Submitted": auto_submitted,
        "X-Loop": loop_marker,
    }
    for name, value in optional.items():
        if value:
            message[name] = value
    # Quoted-printable keeps non-ASCII text and long lines safe through any relay.
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    for attachment in attachments:
        _attach(message, attachment)
    return message, message_id


def _thread_references(references: Sequence[str], in_reply_to: str | None) -> list[str]:
    ids = [ref for ref in references if ref]
    if in_reply_to and in_reply_to not in ids:
        ids.append(in_reply_to)
    return ids[-MAX_REFERENCES:]


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    maintype, _, subtype = attachment.content_type.lower().partition("/")
    # message/* may not be base64-encoded (RFC 2046), and a bad type must not stop the mail.
    if maintype in ("", "message", "multipart") or not subtype:
        maintype, subtype = "application", "octet-stream"
    message.add_attachment(
        attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
    )


def case_subject(case_number: int, subject: str) -> str:
    """`[Case #N] subject`, without reply prefixes and without repeating the tag."""
    tag = f"[Case #{case_number}]"
    rest = subject
    while True:
        cleaned = _REPLY_PREFIX.sub("", rest, count=1)
        cleaned = _strip_own_tag(cleaned, case_number)
        if cleaned == rest:
            break
        rest = cleaned
    rest = " ".join(_strip_own_tag_anywhere(rest, case_number).split())
    return f"{tag} {rest}" if rest else tag


def _strip_own_tag(subject: str, case_number: int) -> str:
    match = _CASE_TAG.match(subject.lstrip())
    if match and int(match.group(1)) == case_number:
        return subject.lstrip()[match.end() :]
    return subject


def _strip_own_tag_anywhere(subject: str, case_number: int) -> str:
    return _CASE_TAG.sub(
        lambda match: " " if int(match.group(1)) == case_number else match.group(0), subject
    )


def case_number_from_subject(subject: str) -> int | None:
    """The number of the first `[Case #N]` tag in a subject, if any."""
    match = _CASE_TAG.search(subject)
    return int(match.group(1)) if match else None
