"""mod_xml_curl as recorded: the HTTP posts a real FreeSWITCH made, and a raw-socket replay.

Framing of the fixtures (tests/fixtures/freeswitch/README.md): a line
`### REQUEST <label> (<N> bytes ...)` (or RESPONSE), then exactly N bytes, then one `\\n`.
Anything else between records (`#### NOTE` lines, the note's sample document) is skipped.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote
from xml.etree.ElementTree import Element, fromstring

from tests.support.eslpeer import FIXTURES

_HEADER = re.compile(rb"### (REQUEST|RESPONSE) (\S+?):? .*\((\d+) bytes[^\n]*\n")


@dataclass(frozen=True)
class Post:
    """One recorded request: its label and the exact bytes FreeSWITCH sent."""

    label: str
    raw: bytes

    @property
    def body(self) -> bytes:
        return self.raw.partition(b"\r\n\r\n")[2]

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("latin-1"), keep_blank_values=True))

    def calling(self, number: str, context: str, extra: bytes = b"") -> bytes:
        """The recorded body, byte for byte but for a call to `number` in `context` (the
        caller profile's and the hunt's fields alike), with `extra` fields appended."""
        body = self.body
        fields = {
            b"Caller-Destination-Number": number,
            b"Hunt-Destination-Number": number,
            b"Caller-Context": context,
            b"Hunt-Context": context,
        }
        for field, value in fields.items():
            body, replaced = re.subn(
                rb"(?<=&)" + re.escape(field) + rb"=[^&]*",
                field + b"=" + quote(value, safe="").encode(),
                body,
            )
            assert replaced == 1, field
        return body + extra

    def to(self, path: str, authorization: str | None = None) -> bytes:
        """The same bytes with our path in the request line (the recorder listened on
        /xml/<section>) and, if given, an Authorization header after the request line."""
        line, rest = self.raw.split(b"\r\n", 1)
        method, _, version = line.split(b" ")
        head = b" ".join((method, path.encode(), version)) + b"\r\n"
        if authorization is not None:
            head += b"Authorization: " + authorization.encode() + b"\r\n"
        return head + rest


def recorded_posts(name: str) -> list[Post]:
    """The REQUEST records of a fixture file, in order."""
    raw = (FIXTURES / name).read_bytes()
    posts: list[Post] = []
    pos = 0
    while pos < len(raw):
        match = _HEADER.match(raw, pos)
        if match is None:
            end = raw.find(b"\n", pos)
            pos = len(raw) if end < 0 else end + 1
            continue
        size = int(match[3])
        data = raw[match.end() : match.end() + size]
        if len(data) != size or raw[match.end() + size : match.end() + size + 1] != b"\n":
            raise ValueError(f"{name}: record {match[2]!r} is not {size} bytes + newline")
        if match[1] == b"REQUEST":
            posts.append(Post(match[2].decode(), data))
        pos = match.end() + size + 1
    return posts


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def replay(port: int, request: bytes) -> RawResponse:
    """Send `request` as it is over a new TCP connection; read one HTTP/1.1 response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in filter(None, lines):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return RawResponse(int(status_line.split(" ")[1]), headers, body)
    finally:
        writer.close()
        await writer.wait_closed()


def parse_document(answer: bytes) -> Element:
    """Our own answer as a tree (what FreeSWITCH's parser will see)."""
    return fromstring(answer)  # noqa: S314 (c2bot's output, not untrusted input)


def is_not_found(document: Element) -> bool:
    """The "not found" result FreeSWITCH falls back on."""
    result = document.find("section[@name='result']/result")
    return result is not None and result.get("status") == "not found"
