"""Files between Slack and cases: fetch what people attach, share what a case carries."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from c2bot.handlers.cases import FileUpload

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 25 * 1024 * 1024
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=60)

SlackFile = Mapping[str, Any]


class FileFetchError(Exception):
    """Slack would not give us a file's bytes."""


def slack_hosted(url: str, api_url: str) -> bool:
    """Whether a file URL is Slack's own (or our configured Web API's), fit for the bot token.

    External files point anywhere; sending them the bot token would give it away.
    """
    host = (urlsplit(url).hostname or "").lower()
    api_host = (urlsplit(api_url).hostname or "").lower()
    return host == api_host or host == "slack.com" or host.endswith(".slack.com")


async def fetch_files(
    token: str, files: Sequence[SlackFile], api_url: str
) -> tuple[tuple[FileUpload, ...], tuple[str, ...]]:
    """Download files from Slack with the bot token: what arrived, and the names that did not."""
    fetched: list[FileUpload] = []
    missing: list[str] = []
    if not files:
        return (), ()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=DOWNLOAD_TIMEOUT) as http:
        for file in files:
            name = str(file.get("name") or file.get("title") or file.get("id") or "file")
            try:
                fetched.append(await _fetch(http, file, name, api_url))
            except (FileFetchError, aiohttp.ClientError, TimeoutError) as error:
                log.warning("could not fetch Slack file %s (%s): %s", name, file.get("id"), error)
                missing.append(name)
    return tuple(fetched), tuple(missing)


async def _fetch(
    http: aiohttp.ClientSession, file: SlackFile, name: str, api_url: str
) -> FileUpload:
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise FileFetchError("the file has no url_private (not shared with the bot?)")
    if file.get("is_external") or not slack_hosted(str(url), api_url):
        raise FileFetchError("the file is stored outside Slack; attach the file itself")
    if int(file.get("size") or 0) > MAX_FILE_BYTES:
        raise FileFetchError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    mimetype = str(file.get("mimetype") or "application/octet-stream")
    async with http.get(str(url)) as response:
        if response.status != 200:
            raise FileFetchError(f"HTTP {response.status}")
        # Without a valid token Slack answers 200 with its sign-in page instead of the file.
        if response.content_type == "text/html" and mimetype != "text/html":
            raise FileFetchError("Slack answered with its sign-in page (is files:read granted?)")
        data = await response.content.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FileFetchError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    return FileUpload(filename=name, content_type=mimetype, data=data)


async def share_files(
    client: AsyncWebClient,
    channel: str,
    thread_ts: str,
    files: Sequence[FileUpload],
    comment: str | None = None,
) -> None:
    """Upload files into a thread, all in one message."""
    uploads = [{"content": f.data, "filename": f.filename, "title": f.filename} for f in files]
    if not uploads:
        return
    await client.files_upload_v2(
        file_uploads=uploads, channel=channel, thread_ts=thread_ts, initial_comment=comment
    )
