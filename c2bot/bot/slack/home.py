"""App Home: the manifest turns the Home tab off, so opening the app needs no answer.

The listener is here so the event is acknowledged as handled rather than logged as unknown.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


async def on_home_opened() -> None:
    return None


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(on_home_opened)
