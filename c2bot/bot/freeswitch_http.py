"""mod_xml_curl's endpoints: FreeSWITCH posts a lookup (dialplan, directory, configuration) as a
form and gets an XML document back.

A call waits while FreeSWITCH waits for us, so every answer is a 200 with a document: when a
builder fails we log it, count it and answer "not found", which makes FreeSWITCH fall back to
its own XML at once instead of retrying or stalling the call.

Who may ask: with C2_FREESWITCH_SECRET set, HTTP basic auth as user `freeswitch` with that
password; without it, only clients on this machine (loopback).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from c2bot.bot.services import Services
from c2bot.switch import configuration, dialplan, directory
from c2bot.switch.cdr import CdrIntake
from c2bot.switch.wire import LazyDecoded
from c2bot.switch.xmldoc import not_found

log = logging.getLogger(__name__)

USER = "freeswitch"
TEXT_XML = {"content-type": "text/xml"}
CHALLENGE = {"www-authenticate": 'Basic realm="c2bot FreeSWITCH", charset="UTF-8"'}
NOT_FOUND = not_found()
# Request fields worth a log line when a lookup fails (never the digest fields).
_LOGGED = (
    "key_value",
    "user",
    "domain",
    "Caller-Destination-Number",
    "Caller-Context",
    "Unique-ID",
)

Params = Mapping[str, str]
Build = Callable[[Params], Awaitable[bytes]]


class FreeSwitchEndpoints:
    """POST /freeswitch/dialplan, /freeswitch/directory and /freeswitch/configuration."""

    def __init__(self, services: Services, registry: CollectorRegistry) -> None:
        self.services = services
        secret = services.settings.freeswitch_secret
        self.credentials = (
            None if secret is None else f"{USER}:{secret.get_secret_value()}".encode()
        )
        self.requests = Counter(
            "c2bot_freeswitch_requests",
            "mod_xml_curl requests by section and answer (found, not_found, error, refused)",
            ["section", "answer"],
            registry=registry,
        )
        self.seconds = Histogram(
            "c2bot_freeswitch_request_seconds",
            "Time to answer a mod_xml_curl request",
            ["section"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self.cdr = CdrIntake(services.sessions, services.settings, registry)

    def routes(self) -> list[Route]:
        builders: dict[str, Build] = {
            "dialplan": self._dialplan,
            "directory": self._directory,
            "configuration": self._configuration,
        }
        return [
            Route(f"/freeswitch/{section}", self._endpoint(section, build), methods=["POST"])
            for section, build in builders.items()
        ]

    def cdr_routes(self) -> list[Route]:
        """POST /freeswitch/cdr (mod_json_cdr)."""
        return [Route("/freeswitch/cdr", self._cdr, methods=["POST"])]

    async def _cdr(self, request: Request) -> Response:
        """mod_json_cdr: 200 once the record is stored (or kept as a reject, or a B leg we do
        not store); 503 when the database failed, so FreeSWITCH keeps the record and retries."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        body = await request.body()
        host = request.client.host if request.client is not None else "?"
        uuid = request.query_params.get("uuid", "")
        try:
            await self.cdr.take(body, request.headers.get("content-type", ""), uuid, host)
        except Exception:
            log.exception("call record %s from %s not stored; answered 503", uuid, host)
            return Response("not stored, try again\n", status_code=503, media_type="text/plain")
        return Response(b"", media_type="text/plain")

    def _endpoint(self, section: str, build: Build) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            refusal = self._refusal(request)
            if refusal is not None:
                self.requests.labels(section, "refused").inc()
                return refusal
            params = FormParams(await request.body())
            started = time.perf_counter()
            body, outcome = await self._answer(section, build, params)
            self.seconds.labels(section).observe(time.perf_counter() - started)
            self.requests.labels(section, outcome).inc()
            return Response(body, headers=TEXT_XML)

        return endpoint

    async def _answer(self, section: str, build: Build, params: Params) -> tuple[bytes, str]:
        if params.get("section", section) != section:
            return NOT_FOUND, "not_found"  # a binding pointed at the wrong endpoint
        try:
            body = await build(params)
        except Exception:
            details = ", ".join(f"{k}={params[k]!r}" for k in _LOGGED if params.get(k))
            log.exception("FreeSWITCH %s lookup failed (%s); answered not found", section, details)
            return NOT_FOUND, "error"
        return body, "not_found" if body == NOT_FOUND else "found"

    def _refusal(self, request: Request) -> Response | None:
        if self.credentials is None:
            if _is_loopback(request):
                return None
            return Response(
                "Set C2_FREESWITCH_SECRET to serve FreeSWITCH on other hosts.\n",
                status_code=403,
                media_type="text/plain",
            )
        given = _basic_credentials(request.headers.get("authorization", ""))
        if given is not None and hmac.compare_digest(given, self.credentials):
            return None
        return Response(
            "FreeSWITCH must log in as user freeswitch with C2_FREESWITCH_SECRET.\n",
            status_code=401,
            headers=CHALLENGE,
            media_type="text/plain",
        )

    async def _directory(self, params: Params) -> bytes:
        return await directory.answer(self.services.sessions, self.services.settings, params)

    async def _configuration(self, params: Params) -> bytes:
        return await configuration.answer(self.services.sessions, self.services.settings, params)

    async def _dialplan(self, params: Params) -> bytes:
        services = self.services
        return await dialplan.answer(services.sessions, services.settings, params, services.clock())


class FormParams(LazyDecoded):
    """An x-www-form-urlencoded body whose values are decoded when first read (mod_xml_curl
    posts the whole channel, about 3 KB and 150 fields). Reads as `dict(parse_qsl(...))` would
    (the last of a repeated field wins)."""

    __slots__ = ()

    def __init__(self, body: bytes) -> None:
        raw: dict[str, bytes] = {}
        for pair in body.split(b"&"):
            if pair:
                key, _, value = pair.partition(b"=")
                raw[_decode(key)] = value
        super().__init__(raw)

    def _decode_value(self, key: str, value: Any) -> str:
        return _decode(value)


def _decode(value: bytes) -> str:
    text = value.decode("latin-1")
    return unquote_plus(text) if b"%" in value or b"+" in value else text


def _basic_credentials(header: str) -> bytes | None:
    """`user:password` from an `Authorization: Basic ...` header, None for anything else."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
