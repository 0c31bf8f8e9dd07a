"""Decide stage of inbound mail: raw bytes in, a typed `ParsedMail` out.

Pure functions over bytes and `email` objects (no Slack, database or network). Parsing never
trusts a header: `policy.default` raises from inside its header parser on some malformed values,
so every header read here degrades to the raw text instead of failing the whole mail.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser, HeaderParser
from email.utils import getaddresses
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

from c2bot.handlers.cases import FileUpload

# A mail attachment is the same thing a case stores as a file.
Attachment = FileUpload


@dataclass(frozen=True)
class BounceReport:
    failed_recipients: tuple[str, ...]
    status: str
    diagnostic: str
    original_message_id: str | None


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    body_text: str
    attachments: tuple[Attachment, ...]
    automatic_reason: str | None
    bounce: BounceReport | None


class MalformedMail(ValueError):
    """Input that is not a mail c2bot can act on; `message` says why, for a human."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_mail(raw: bytes, envelope_from: str) -> ParsedMail:
    """Parse one received mail; raises `MalformedMail` when there is nothing to act on."""
    msg = _parse_bytes(raw)
    senders = _addresses(msg, "From")
    if not senders and not _is_null_sender(envelope_from):
        raise MalformedMail("The mail has no usable From address.")
    from_name, from_addr = senders[0] if senders else ("", "")
    body_part = _body_part(msg)
    message_ids = _message_ids(_raw_header(msg, "Message-ID"))
    return ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=_message_ids(_raw_header(msg, "In-Reply-To")),
        references=_message_ids(_raw_header(msg, "References")),
        from_addr=from_addr,
        from_name=from_name,
        to=_unique(addr for name in ("To", "Cc") for _, addr in _addresses(msg, name)),
        subject=" ".join(_decoded_header(msg, "Subject").split()),
        body_text=_body_text(msg, body_part),
        attachments=_attachments(msg, body_part),
        automatic_reason=automatic_reason(msg, envelope_from),
        bounce=bounce_report(msg),
    )


def stored_envelope_sender(raw: bytes) -> str:
    """The envelope sender of a message fetched from a mailbox (IMAP), where there is no SMTP
    envelope: the Return-Path the delivering server wrote (`<>` for bounces), else From."""
    msg = BytesHeaderParser(EmailMessage, policy=policy.default).parsebytes(raw)
    return_path = _raw_header(msg, "Return-Path")
    if return_path is not None:
        return return_path.strip().strip("<>").strip()
    senders = _addresses(msg, "From")
    return senders[0][1] if senders else ""


def check_headers(raw: bytes, envelope_from: str) -> None:
    """The checks of `parse_mail` that need only the header block: cheap enough to run before
    a message is accepted whose body is parsed later."""
    if not raw.strip():
        raise MalformedMail("The mail is empty.")
    msg = BytesHeaderParser(EmailMessage, policy=policy.default).parsebytes(raw)
    if not msg.keys():
        raise MalformedMail("The data is not a mail: it has no header block.")
    if not _addresses(msg, "From") and not _is_null_sender(envelope_from):
        raise MalformedMail("The mail has no usable From address.")


def _parse_bytes(raw: bytes) -> EmailMessage:
    if not raw.strip():
        raise MalformedMail("The mail is empty.")
    msg = BytesParser(EmailMessage, policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    if not msg.keys():
        # The parser files anything before the first "Name: value" line under the body, so
        # garbage and plain text both arrive here with no headers at all.
        raise MalformedMail("The data is not a mail: it has no header block.")
    return msg


# Headers ---------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Undo the parser's surrogate escapes for raw 8-bit bytes, reading them as UTF-8."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that no byte produced
        return text.encode("utf-8", "replace").decode("utf-8")


def _raw_header(msg: Message, name: str) -> str | None:
    """The first `name` header as unfolded raw text, without the header parser."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return " ".join(_clean(str(value)).split())
    return None


def _decode_words(text: str) -> str:
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text


def _decoded_header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return _clean(str(value)) if value is not None else ""
    except Exception:  # the stdlib header parser raises IndexError, AttributeError, ...
        raw = _raw_header(msg, name)
        return _decode_words(raw) if raw is not None else ""


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lowercase address) pairs of every `name` header, invalid ones dropped."""
    pairs: list[tuple[str, str]]
    try:
        headers = msg.get_all(name) or []
        pairs = [
            (a.display_name, a.addr_spec)
            for header in headers
            if isinstance(header, AddressHeader)
            for a in header.addresses
        ]
    except Exception:  # the stdlib header parser raises IndexError, AttributeError, ...
        raws = [_clean(str(value)) for key, value in msg.raw_items() if key.lower() == name.lower()]
        pairs = [(_decode_words(n), addr) for n, addr in getaddresses(raws)]
    return [
        (" ".join(_clean(display).split()), addr.strip().lower())
        for display, addr in pairs
        if _ADDRESS.fullmatch(addr.strip())
    ]


_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def _message_ids(value: str | None) -> tuple[str, ...]:
    """Message-IDs in angle brackets; bare `local@domain` words are bracketed for lax mailers."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if not found:
        found = [f"<{word}>" for word in value.split() if _ADDRESS.fullmatch(word)]
    return _unique(found)


def _unique(items: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _is_null_sender(envelope_from: str) -> bool:
    return envelope_from.strip() in ("", "<>")


# Automatic mail --------------------------------------------------------------------------------

_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
_SUPPRESS_VALUES = frozenset({"all", "oof", "autoreply"})


def automatic_reason(msg: Message, envelope_from: str) -> str | None:
    """Why `msg` is automatic mail that must never open a case or get an answer, else None."""
    if _is_null_sender(envelope_from):
        return "empty envelope sender"
    checks = (_auto_submitted, _report_type, _precedence, _list_headers, _loop_headers, _suppress)
    for check in checks:
        reason = check(msg)
        if reason:
            return reason
    return _daemon_sender(msg, envelope_from)


def _first_token(value: str | None) -> str:
    return value.split(";", 1)[0].strip().lower() if value else ""


def _auto_submitted(msg: Message) -> str | None:
    value = _first_token(_raw_header(msg, "Auto-Submitted"))
    return f"Auto-Submitted: {value}" if value and value != "no" else None


def _report_type(msg: Message) -> str | None:
    content_type = _first_token(_raw_header(msg, "Content-Type"))
    return "Content-Type: multipart/report" if content_type == "multipart/report" else None


def _precedence(msg: Message) -> str | None:
    value = _first_token(_raw_header(msg, "Precedence"))
    return f"Precedence: {value}" if value in ("bulk", "list", "junk", "auto_reply") else None


def _list_headers(msg: Message) -> str | None:
    present = [name for name in ("List-Id", "List-Unsubscribe") if name.lower() in _names(msg)]
    return f"{present[0]} header" if present else None


def _loop_headers(msg: Message) -> str | None:
    present = [n for n in ("X-Loop", "X-Autoreply", "X-Autorespond") if n.lower() in _names(msg)]
    return f"{present[0]} header" if present else None


def _suppress(msg: Message) -> str | None:
    value = _raw_header(msg, "X-Auto-Response-Suppress") or ""
    tokens = {token.strip().lower() for token in value.split(",")}
    return f"X-Auto-Response-Suppress: {value}" if tokens & _SUPPRESS_VALUES else None


def _daemon_sender(msg: Message, envelope_from: str) -> str | None:
    candidates = [addr for _, addr in _addresses(msg, "From")] + [envelope_from.strip("<> ")]
    for address in candidates:
        if address.partition("@")[0].lower() in _DAEMON_LOCAL_PARTS:
            return f"sent by {address.lower()}"
    return None


def _names(msg: Message) -> set[str]:
    return {key.lower() for key, _ in msg.raw_items()}


# Bounces (RFC 3464) ----------------------------------------------------------------------------

_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_TYPES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
    }
)
_TYPED_VALUE = re.compile(r"^\s*[A-Za-z0-9-]+\s*;\s*")


def bounce_report(msg: Message) -> BounceReport | None:
    """The failed recipients of a delivery-status report; None for anything else or a delay."""
    if _content_type(msg) != "multipart/report":
        return None
    if _content_param(msg, "report-type").lower() != "delivery-status":
        return None
    failed = [
        block for block in _status_blocks(msg) if _first_token(block.get("action")) == "failed"
    ]
    recipients = _unique([_recipient(block) for block in failed if _recipient(block)])
    if not recipients:
        return None
    first = failed[0]
    return BounceReport(
        failed_recipients=recipients,
        status=first.get("status", "").split(" ", 1)[0],
        diagnostic=_TYPED_VALUE.sub("", first.get("diagnostic-code", ""), count=1),
        original_message_id=_original_message_id(msg),
    )


def _status_blocks(msg: Message) -> list[dict[str, str]]:
    """Field groups (lowercase name to value) of every delivery-status part of a report."""
    return [
        {key.lower(): " ".join(_clean(str(value)).split()) for key, value in group.raw_items()}
        for part in _leaf_parts(msg)
        if _content_type(part) in _STATUS_TYPES
        for group in _status_groups(part)
    ]


def _status_groups(part: Message) -> list[Message]:
    """The per-message and per-recipient header groups of one delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [group for group in payload if isinstance(group, Message)]
    # A transfer-encoded status part is not split into groups by the parser.
    chunks = re.split(r"\n[ \t]*\n", _part_text(part).replace("\r\n", "\n"))
    return [HeaderParser().parsestr(chunk.strip() + "\n") for chunk in chunks]


def _recipient(block: dict[str, str]) -> str:
    value = block.get("final-recipient") or block.get("original-recipient") or ""
    return _TYPED_VALUE.sub("", value, count=1).strip("<> ").lower()


def _original_message_id(msg: Message) -> str | None:
    for part in _leaf_parts(msg):
        if _content_type(part) not in _ORIGINAL_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            headers = payload[0] if payload and isinstance(payload[0], Message) else None
        else:
            headers = HeaderParser().parsestr(_part_text(part))
        found = _message_ids(_raw_header(headers, "Message-ID")) if headers is not None else ()
        if found:
            return found[0]
    return None


# Body and attachments --------------------------------------------------------------------------


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a broken Content-Type header: RFC 2045 says treat as octets
        return "application/octet-stream"


def _content_param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name, "")
    except Exception:  # broken Content-Type parameters
        return ""
    return value if isinstance(value, str) else ""


def _leaf_parts(part: Message) -> Iterator[Message]:
    """Non-multipart parts in mail order; message/* parts are leaves, not descended into."""
    payload = part.get_payload()
    if _content_type(part).startswith("message/") or not isinstance(payload, list):
        yield part
        return
    for sub in payload:
        if isinstance(sub, Message):
            yield from _leaf_parts(sub)


def _body_part(msg: EmailMessage) -> Message | None:
    try:
        return msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # malformed MIME structure: no readable body rather than no mail
        return None


def _part_text(part: Message) -> str:
    """Decoded text of a leaf part; unknown charsets fall back to UTF-8, errors are replaced."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset() or "utf-8"
    except Exception:  # broken Content-Type parameters
        charset = "utf-8"
    # Undeclared 8-bit text is far more often UTF-8 than anything else.
    charset = "utf-8" if charset in ("us-ascii", "ascii") else charset
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _body_text(msg: Message, body_part: Message | None) -> str:
    """The body as text; Apple Mail splits text around inline images, so later parts follow."""
    if body_part is None:
        return ""
    parts = [body_part]
    if _content_type(body_part) == "text/plain":
        parts += [part for part in _leaf_parts(msg) if _is_text_continuation(part, body_part)]
    texts = [_readable_text(part) for part in parts]
    return "\n\n".join(text for text in texts if text)


def _is_text_continuation(part: Message, body_part: Message) -> bool:
    return (
        part is not body_part and _content_type(part) == "text/plain" and not _is_attachment(part)
    )


def _readable_text(part: Message) -> str:
    text = _part_text(part).replace("\r\n", "\n").replace("\r", "\n")
    if _content_type(part) == "text/html":
        text = html_to_text(text)
    return text.strip()


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:  # broken Content-Disposition: decide on the type alone
        disposition = None
    maintype = _content_type(part).split("/", 1)[0]
    if disposition == "attachment" or maintype not in ("text", "message", "multipart"):
        return True
    # A named text part shown inline (Apple Mail does this for .txt files) is still a file.
    return maintype == "text" and bool(_filename(part))


def _attachments(msg: Message, body_part: Message | None) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for part in _leaf_parts(msg):
        if part is not body_part and _is_attachment(part):
            found.append(_attachment(part, len(found) + 1))
    return tuple(found)


def _attachment(part: Message, number: int) -> Attachment:
    content_type = _content_type(part)
    filename = _safe_filename(_filename(part)) or _default_filename(number, content_type)
    return Attachment(filename=filename, content_type=content_type, data=_part_bytes(part))


def _part_bytes(part: Message) -> bytes:
    if not part.is_multipart():
        payload = part.get_payload(decode=True)
        return payload if isinstance(payload, bytes) else b""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        try:
            return payload[0].as_bytes()
        except Exception:  # re-serialising a broken embedded mail; keep the rest of the mail
            return b""
    return b""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # broken Content-Disposition or Content-Type parameters
        return ""
    # Outlook puts RFC 2047 encoded-words inside quoted filename parameters.
    return _clean(_decode_words(name) if "=?" in name else name)


_UNSAFE_FILENAME_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_MIME_TYPES = mimetypes.MimeTypes()  # built-in table only, not the host's /etc/mime.types


def _safe_filename(name: str) -> str:
    """The last path component with control characters removed; "" when nothing usable is left."""
    base = re.split(r"[\\/]", name)[-1]
    base = " ".join(_UNSAFE_FILENAME_CHARS.sub(" ", base).split()).strip(". ")
    return base[-200:]


def _default_filename(number: int, content_type: str) -> str:
    extension = _MIME_TYPES.guess_extension(content_type) or ".bin"
    return f"attachment-{number}{extension}"


# HTML to text ----------------------------------------------------------------------------------

_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "template"})
_LINE_TAGS = frozenset(
    {"br", "div", "tr", "li", "ul", "ol", "table", "hr", "dt", "dd", "dl", "section", "article"}
)
_PARAGRAPH_TAGS = frozenset({"p", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6"})


class _TextExtractor(HTMLParser):
    """Collects readable lines; blockquote content comes out quoted with "> " like plain mail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._words: list[str] = []
        self._skipping = 0
        self._quote_depth = 0
        self._pre_depth = 0
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _LINE_TAGS or tag in _PARAGRAPH_TAGS:
            self._end_line(blank=tag in _PARAGRAPH_TAGS, force=tag == "br")
        self._quote_depth += tag == "blockquote"
        self._pre_depth += tag == "pre"
        if tag == "li":
            self._words.append("- ")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _LINE_TAGS or tag in _PARAGRAPH_TAGS:
            self._end_line(blank=tag in _PARAGRAPH_TAGS)
        if tag == "blockquote":
            self._quote_depth = max(0, self._quote_depth - 1)
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        if tag == "a":
            self._add_link()

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if not self._pre_depth:
            self._words.append(re.sub(r"\s+", " ", data))
            return
        first, *rest = data.split("\n")
        self._words.append(first)
        for line in rest:
            self._end_line(force=True)
            self._words.append(line)

    def _add_link(self) -> None:
        href, self._href = self._href, None
        if href and href.startswith(("http://", "https://")) and href not in "".join(self._words):
            self._words.append(f" ({href})")

    def _end_line(self, *, blank: bool = False, force: bool = False) -> None:
        line = "".join(self._words).strip() if not self._pre_depth else "".join(self._words)
        self._words = []
        prefix = "> " * self._quote_depth
        if line or force:
            self.lines.append((prefix + line).rstrip())
        if blank and self.lines and self.lines[-1]:
            self.lines.append("")

    def text(self) -> str:
        self._end_line()
        return re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML body, for mail that comes without a text/plain part."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return extractor.text()


# Reply stripping -------------------------------------------------------------------------------

# mail-parser-reply splits at "On ... wrote:", "Am ... schrieb ...:", "Op ... schreef:",
# "-----Original Message-----" and From:/Van: header blocks over several lines. It misses the
# Dutch headers real clients write ("schreef Name <addr>:", "heeft ... het volgende geschreven:",
# both wrapped over lines), Outlook's flattened one-line header block and localised
# "Original Message" separators. Its own signature removal (`EmailReply.body`) is not used: it
# cuts from any line starting "Thanks," or "- item" and deletes any sentence starting "Warning:"
# that mentions mail, which would drop what customers actually wrote.
_REPLY_PARSER = EmailReplyParser(languages=["en", "nl", "de", "fr"])
_LIBRARY_MAX_CHARS = 32_000
_LIBRARY_MAX_LINE = 300
_LIBRARY_PLACEHOLDER = "[...]"
# The library drops blank lines and Outlook's underscore rule before a header block.
_SKIPPABLE_LINE = re.compile(r"\s*(?:[_-]{32,}\s*)?")

_DUTCH_WROTE_HEADER = re.compile(
    r"Op\s.*?\d{1,2}[:.]\d{2}.*?\s(?:schreef(?:\s.*)?|het\s+volgende\s+geschreven\s*):",
    re.IGNORECASE,
)
_DUTCH_WROTE_START = re.compile(r"Op\s.*\d", re.IGNORECASE)
_ONE_LINE_HEADER_BLOCK = re.compile(
    r"[*\s]*(?:Van|From)\s?:.*\b(?:Verzonden|Sent|Datum|Date)\s?:.*\b(?:Onderwerp|Subject)\s?:",
    re.IGNORECASE,
)
_ORIGINAL_SEPARATOR = re.compile(
    r"-{2,}\s*(?:Oorspronkelijk bericht|Origineel bericht|Ursprüngliche Nachricht"
    r"|Message d'origine|Original Message)\s*-{2,}",
    re.IGNORECASE,
)
_SENT_FROM = re.compile(
    r"(?:Sent from my|Sent from Outlook|Get Outlook for|Verzonden (?:vanaf|met|via) mijn"
    r"|Verstuurd (?:vanaf|met|via) mijn|Outlook voor \w+ downloaden|Gesendet von meinem"
    r"|Envoyé de mon)\b.*",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"(?:Met vriendelijke groet(?:en)?|Vriendelijke groet(?:en)?|Met (?:hartelijke )?groet(?:en)?"
    r"|Hartelijke groet(?:en)?|Groet(?:en|jes)?|M\.?v\.?g\.?|Vr\.? ?gr\.?|Kind regards|Best regards"
    r"|Warm regards|Regards|Best wishes|Cheers|Mit freundlichen Grüßen|Viele Grüße|Beste Grüße"
    r"|(?:Bien )?Cordialement)\b",
    re.IGNORECASE,
)
# What may follow a sign-off on its line: nothing, ", any name", or a capitalised name.
_SIGN_OFF_TAIL = re.compile(r"[\s,.!-]*|,\s*\S+(?:\s+\S+){0,3}\s*|(?:\s+[A-Z][\w.-]*){1,3}[,.!]?")
_SIGN_OFF_MAX_CHARS = 80
_HEADER_MAX_CHARS = 400
_SIGNATURE_MAX_LINES = 8
_SIGNATURE_MAX_CHARS = 600
_HEADER_WRAP_LINES = 3


def strip_reply(text: str) -> str:
    """The new text of a reply: quoted mail, reply headers and signatures removed.

    When nothing is left (a reply that is only a signature, or only quotes) the whole text is
    returned, stripped, so a message never arrives empty.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _library_reply_end(lines)]
    lines = _cut_at_reply_header(lines)
    lines = _drop_trailing_quotes(lines)
    lines = _cut_signature(lines)
    stripped = "\n".join(_drop_trailing_quotes(lines)).strip("\n").rstrip()
    return stripped if stripped.strip() else text.strip()


def _library_reply_end(lines: list[str]) -> int:
    """How many leading lines mail-parser-reply keeps as the new reply; all of them when unsure.

    The library is given a shadow copy: its header patterns take time quadratic in the length
    of a line (a 10 KB line starting "Op " costs seconds), so long lines are replaced by a
    placeholder and the text is capped. Its answer, with every line stripped, is then matched
    back to our lines so the reply keeps its indentation.
    """
    shadow: list[str] = []
    size = 0
    for line in lines:
        shadow.append(line if len(line) <= _LIBRARY_MAX_LINE else _LIBRARY_PLACEHOLDER)
        size += len(shadow[-1]) + 1
        if size > _LIBRARY_MAX_CHARS:
            break
    reply = str(_REPLY_PARSER.parse_reply("\n".join(shadow)) or "")
    end = _matched_prefix(shadow, reply.split("\n")) if reply else None
    return end if end is not None and end < len(shadow) else len(lines)


def _matched_prefix(lines: list[str], wanted: list[str]) -> int | None:
    """The number of `lines` that, stripped, read as `wanted`, skipping blank lines and rules."""
    index = 0
    for want in wanted:
        while index < len(lines) and lines[index].strip() != want:
            if not _SKIPPABLE_LINE.fullmatch(lines[index]):
                return None
            index += 1
        if index == len(lines):
            return None
        index += 1
    return index


def _unquote(line: str) -> str:
    return re.sub(r"^(?:>\s?)+", "", line.strip())


def _is_reply_header(lines: list[str], index: int) -> bool:
    line = _unquote(lines[index])
    if len(line) > _HEADER_MAX_CHARS:  # keeps the lazy patterns below from going quadratic
        return False
    if _ONE_LINE_HEADER_BLOCK.match(line) or _ORIGINAL_SEPARATOR.fullmatch(line):
        return True
    if not _DUTCH_WROTE_START.match(line):
        return False
    # Gmail and Apple Mail wrap a long header line, anywhere, over the next line or two.
    for end in range(index + 1, min(index + _HEADER_WRAP_LINES, len(lines)) + 1):
        joined = " ".join(_unquote(part) for part in lines[index:end])
        if len(joined) <= _HEADER_MAX_CHARS and _DUTCH_WROTE_HEADER.fullmatch(joined):
            return True
    return False


def _cut_at_reply_header(lines: list[str]) -> list[str]:
    for index in range(len(lines)):
        if _is_reply_header(lines, index):
            return lines[:index]
    return lines


def _drop_trailing_quotes(lines: list[str]) -> list[str]:
    """Drops quoted lines, blank lines and separator rules at the end."""
    end = len(lines)
    while end and re.fullmatch(r"\s*(?:>.*|[-_=]{5,}\s*)?", lines[end - 1]):
        end -= 1
    return lines[:end]


def _cut_signature(lines: list[str]) -> list[str]:
    delimiters = [i for i, line in enumerate(lines) if line.rstrip() in ("--", "-- ")]
    if delimiters:
        lines = lines[: delimiters[-1]]
    lines = _cut_before_short_tail(lines, lambda line: bool(_SENT_FROM.fullmatch(line.strip())))
    return _cut_before_short_tail(lines, _is_sign_off)


def _cut_before_short_tail(lines: list[str], starts_tail: Callable[[str], bool]) -> list[str]:
    """Cuts at the first line that starts a tail (and is followed by a short signature)."""
    for index in range(_signature_search_start(lines), len(lines)):
        if starts_tail(lines[index]) and _is_short_signature(lines[index + 1 :]):
            return lines[:index]
    return lines


def _signature_search_start(lines: list[str]) -> int:
    """Where a sign-off followed by a short signature can begin: no earlier than this line."""
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return filled[-_SIGNATURE_MAX_LINES - 1] if len(filled) > _SIGNATURE_MAX_LINES else 0


def _is_sign_off(line: str) -> bool:
    if len(line) > _SIGN_OFF_MAX_CHARS:
        return False
    match = _SIGN_OFF.match(line.strip())
    return match is not None and bool(_SIGN_OFF_TAIL.fullmatch(line.strip()[match.end() :]))


def _is_short_signature(lines: list[str]) -> bool:
    filled = [line for line in lines if line.strip()]
    return len(filled) <= _SIGNATURE_MAX_LINES and sum(map(len, filled)) <= _SIGNATURE_MAX_CHARS


# Addresses -------------------------------------------------------------------------------------

_CASE_TOKEN = re.compile(r"[a-z2-7]{16,64}")


def local_part(address: str, domain: str) -> str | None:
    """The lowercased local part of `address` when its domain is `domain`, else None."""
    local, at, host = address.strip().strip("<>").rpartition("@")
    if not at or not local or host.rstrip(".").lower() != domain.rstrip(".").lower():
        return None
    return local.lower()


def extract_case_token(address: str, domain: str) -> str | None:
    """The token of a `case+<token>@domain` reply address, if it is well-formed base32."""
    return extract_token(address, domain, "case")


def extract_token(address: str, domain: str, mailbox: str) -> str | None:
    """The token of a `<mailbox>+<token>@domain` address, if it is well-formed base32."""
    local = local_part(address, domain)
    if local is None:
        return None
    prefix, plus, token = local.partition("+")
    if prefix != mailbox or not plus or not _CASE_TOKEN.fullmatch(token):
        return None
    return token
