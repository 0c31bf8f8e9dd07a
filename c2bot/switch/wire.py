"""The Event Socket wire format, as pure functions: framing, header blocks, plain events.

FreeSWITCH sends one message as a header block (``Name: value`` lines, then a blank line) and,
when the block has ``Content-Length``, exactly that many bytes of body. A ``text/event-plain``
body is itself a header block of URL-encoded values, and may carry a nested body after its own
``Content-Length`` (BACKGROUND_JOB results). Nothing here touches a socket, so the recordings in
the test fixtures can be checked byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

# FreeSWITCH's SWITCH_URL_UNSAFE (switch_utils.h); control and non-ASCII bytes are encoded too.
URL_UNSAFE = frozenset(b'\r\n #%&+:;<=>?@[\\]^`{|}"')


class WireError(ValueError):
    """Bytes that are not a well-formed Event Socket message."""


def url_encode(value: str) -> str:
    """Encode a header value the way FreeSWITCH does in plain events (``,`` and ``/`` stay)."""
    out: list[str] = []
    for byte in value.encode("utf-8"):
        if byte in URL_UNSAFE or byte < 0x20 or byte > 0x7E:
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def url_decode(value: str) -> str:
    """Decode one URL-encoded header value (``%2B1%20555`` -> ``+1 555``)."""
    return unquote(value, errors="replace")


def parse_header_block(block: str) -> list[tuple[str, str]]:
    """``Name: value`` lines, in order, duplicates kept; values as they are on the wire."""
    headers: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise WireError(f"header line without a colon: {line[:80]!r}")
        headers.append((name.strip(), value.removeprefix(" ")))
    return headers


def first_values(pairs: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """A read-only mapping of the pairs where, on duplicate names, the first one wins."""
    result: dict[str, str] = {}
    for name, value in pairs:
        result.setdefault(name, value)
    return MappingProxyType(result)


class LazyDecoded(Mapping[str, str]):
    """What FreeSWITCH posts about a channel (a hundred or more URL-encoded fields), each value
    decoded when first read: a request reads a handful, and decoding them all cost as much as
    answering. Subclasses say how one raw value decodes."""

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self._decoded: dict[str, str] = {}

    def _decode_value(self, key: str, value: Any) -> str:
        raise NotImplementedError

    def __getitem__(self, key: str) -> str:
        found = self._decoded.get(key)
        if found is None:
            found = self._decoded[key] = self._decode_value(key, self._raw[key])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw


@dataclass(frozen=True)
class Message:
    """One Event Socket message: its envelope headers (raw) and its body bytes."""

    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def content_type(self) -> str:
        return self.get("Content-Type")


@dataclass(frozen=True)
class EslEvent:
    """A FreeSWITCH event with decoded values; ``host`` names the switch it came from."""

    headers: Mapping[str, str]
    body: str = ""
    host: str = ""
    all_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    @property
    def subclass(self) -> str:
        return self.headers.get("Event-Subclass", "")

    @property
    def unique_id(self) -> str:
        return self.headers.get("Unique-ID", "")

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def variable(self, name: str) -> str:
        return self.headers.get("variable_" + name, "")

    def get_all(self, name: str) -> list[str]:
        """Every value of a header that FreeSWITCH repeats (Hangup-Cause on hangup events)."""
        return [value for key, value in self.all_headers if key == name]


def split_message(data: bytes) -> tuple[Message, bytes] | None:
    """The first complete message in ``data`` and the bytes after it, or None if incomplete."""
    end = data.find(b"\n\n")
    if end < 0:
        return None
    headers = parse_header_block(data[:end].decode("utf-8"))
    message = Message(tuple(headers))
    length_text = message.get("Content-Length")
    start = end + 2
    if not length_text:
        return message, data[start:]
    length = _content_length(length_text)
    if len(data) - start < length:
        return None
    return Message(message.headers, data[start : start + length]), data[start + length :]


def parse_message(raw: bytes) -> Message:
    """Exactly one message; trailing or missing bytes are an error."""
    split = split_message(raw)
    if split is None:
        raise WireError(f"incomplete message ({len(raw)} bytes)")
    message, rest = split
    if rest:
        raise WireError(f"{len(rest)} bytes after the message")
    return message


def iter_messages(data: bytes) -> Iterator[Message]:
    """Every message in a byte stream that holds whole messages only."""
    while data:
        split = split_message(data)
        if split is None:
            raise WireError(f"stream ends inside a message ({len(data)} bytes left)")
        message, data = split
        yield message


def parse_event_plain(body: bytes | str, host: str = "") -> EslEvent:
    """Decode the body of a ``text/event-plain`` message into an event.

    The event's own header block ends at the first blank line; when it has a Content-Length,
    that many bytes after it are the event body (the BACKGROUND_JOB result), never a header.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    end = raw.find(b"\n\n")
    block, rest = (raw, b"") if end < 0 else (raw[:end], raw[end + 2 :])
    pairs = tuple(
        (name, url_decode(value)) for name, value in parse_header_block(block.decode("utf-8"))
    )
    headers = first_values(pairs)
    event_body = b""
    if "Content-Length" in headers:
        length = _content_length(headers["Content-Length"])
        if len(rest) < length:
            raise WireError(f"event body has {len(rest)} of {length} bytes")
        event_body = rest[:length]
    return EslEvent(
        headers=headers,
        body=event_body.decode("utf-8", errors="replace"),
        host=host,
        all_headers=pairs,
    )


def render_headers(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Header lines as FreeSWITCH writes them (values already encoded where needed)."""
    return "".join(f"{name}: {value}\n" for name, value in pairs).encode("utf-8")


def render_message(pairs: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    """One message: headers, Content-Length when there is a body, blank line, body."""
    headers = list(pairs)
    if body:
        headers.append(("Content-Length", str(len(body))))
    return render_headers(headers) + b"\n" + body


def render_event_plain(pairs: Iterable[tuple[str, str]], body: str = "") -> bytes:
    """A ``text/event-plain`` message; ``pairs`` hold decoded values, encoded here.

    As FreeSWITCH does, a nested body follows a second Content-Length inside the event, and
    the outer Content-Length comes before Content-Type.
    """
    encoded = [(name, url_encode(value)) for name, value in pairs]
    nested = body.encode("utf-8")
    if nested:
        encoded.append(("Content-Length", str(len(nested))))
        inner = render_headers(encoded) + b"\n" + nested
    else:
        inner = render_headers(encoded) + b"\n"
    envelope = [("Content-Length", str(len(inner))), ("Content-Type", "text/event-plain")]
    return render_headers(envelope) + b"\n" + inner


def _content_length(text: str) -> int:
    if not text.strip().isdigit():
        raise WireError(f"Content-Length is not a number: {text!r}")
    return int(text)
