"""`make bench`: run every benchmark and print its figures."""

from __future__ import annotations

import asyncio
import logging

from bench import cdr, dialplan, fax_intake, mail_intake, outbound, render, slack_ack, summary


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    for bench in (slack_ack, mail_intake, fax_intake, render, dialplan, cdr, outbound, summary):
        for line in await bench.main():
            print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
