"""The HTTP surface: one ASGI app for Slack events, FreeSWITCH lookups, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from c2bot.bot.freeswitch_http import FreeSwitchEndpoints
from c2bot.bot.services import Services
from c2bot.storage.db import ping
from c2bot.switch.cdr import health as cdr_health

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, object]]]


class SlackEndpoint(Protocol):
    async def handle(self, request: Request) -> Response: ...


def build_http_app(
    services: Services,
    slack: SlackEndpoint | None,
    registry: CollectorRegistry,
    checks: Mapping[str, HealthCheck] | None = None,
) -> Starlette:
    """Routes: POST /slack/events, POST /freeswitch/*, GET /healthz, GET /metrics."""
    freeswitch = FreeSwitchEndpoints(services, registry)
    extra_checks: dict[str, HealthCheck] = {
        **(checks or {}),
        "cdr": partial(cdr_health, services.sessions),
    }

    async def slack_events(request: Request) -> Response:
        if slack is None:
            return JSONResponse(
                {"error": "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"},
                status_code=503,
            )
        return await slack.handle(request)

    async def healthz(_: Request) -> Response:
        report: dict[str, object] = {"slack": "configured" if slack else "not configured"}
        healthy = True
        try:
            await ping(services.engine)
            report["database"] = "ok"
        except Exception as error:  # any failure to reach the database is "unhealthy"
            healthy = False
            report["database"] = f"unreachable: {type(error).__name__}"
        degraded = False
        for name, check in extra_checks.items():
            part = await check()
            report[name] = part
            failing = part.get("ok", True) is False
            degraded = degraded or failing
            # Only a part this process cannot serve without makes it unhealthy (503); a switch
            # that is down only delays faxes, which wait in the database.
            healthy = healthy and not (failing and part.get("critical", False))
        report["status"] = "ok" if healthy and not degraded else "degraded"
        return JSONResponse(report, status_code=200 if healthy else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            *freeswitch.routes(),
            *freeswitch.cdr_routes(),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
