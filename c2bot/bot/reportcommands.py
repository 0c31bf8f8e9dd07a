"""`/report`: call records, summaries, charts and recordings by message, the same words in Slack,
the shell and at `bot@`.

`report cdr|summary|chart [today|yesterday|week|month|year|from:YYYY-MM-DD to:YYYY-MM-DD]
[account:N] [direction:...] [type:...] [disposition:...] [prefix:...] [export]`, `summary` also
takes `group:`, `cdr` takes `page:` (the cursor a page names for the next one), and
`report recording UUID` sends a call's recording.
"""

from __future__ import annotations

from dataclasses import dataclass

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import reportchart, reports
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid
from c2bot.handlers.replies import Reply
from c2bot.storage.models import CallType, Direction

READ_ONLY_VERBS: frozenset[str] = frozenset({"cdr", "summary", "chart", "recording"})
PERIOD_FLAGS = (
    ("today", "today (the default)"),
    ("yesterday", "yesterday"),
    ("week", "this week, from Monday"),
    ("month", "this month"),
    ("year", "this year"),
)
EXPORT_FLAG = ("export", "the whole list as a CSV file (Slack: uploaded; mail: attached)")
FILTERS = (
    Param("from", "first day, YYYY-MM-DD (in the account's time zone)"),
    Param("to", "last day, YYYY-MM-DD (default today)"),
    Param("account", "account number (resellers: a customer; staff: any)"),
    Param("direction", "inbound, outbound or local", tuple(d.value for d in Direction)),
    Param("type", "call type", tuple(t.value.lower() for t in CallType)),
    Param("disposition", "hangup cause, e.g. NORMAL_CLEARING or its Q.850 code 16"),
    Param("prefix", "called numbers starting with these digits"),
)


@dataclass(frozen=True)
class ReportPage(Reply):
    """A CDR page; `next_words` are the words after `report` that show the next page."""

    next_words: str | None = None


def call_filter(inv: Invocation) -> reports.CallFilter:
    periods = [word for word, _ in PERIOD_FLAGS if word in inv.flags]
    if len(periods) > 1:
        raise Invalid(f"Give one period, not {' and '.join(periods)}.")
    return reports.CallFilter(
        period=periods[0] if periods else None,
        date_from=inv.get("from"),
        date_to=inv.get("to"),
        account=inv.get("account"),
        direction=inv.get("direction"),
        call_type=inv.get("type"),
        disposition=inv.get("disposition"),
        prefix=inv.get("prefix"),
    )


def _words(inv: Invocation, page: str) -> str:
    """The invocation's words again, with the next page's cursor."""
    words = [inv.verb, *sorted(inv.flags)]
    words += [f'{key}:"{value}"' if " " in value else f"{key}:{value}"
              for key, value in sorted(inv.values.items()) if key != "page"]  # fmt: skip
    return " ".join([*words, f"page:{page}"])


async def _cdr(ctx: Context, inv: Invocation) -> Result:
    request = reports.CdrRequest(call_filter(inv), inv.get("page"), "export" in inv.flags)
    reply = await reports.cdr(ctx, request)
    if not isinstance(reply, reports.CdrPage) or reply.next_page is None:
        return reply
    words = _words(inv, reply.next_page)
    return ReportPage(
        title=reply.title,
        text=f"{reply.text} Next page: `report {words}`",
        table=reply.table,
        next_words=words,
    )


async def _summary(ctx: Context, inv: Invocation) -> Result:
    request = reports.SummaryRequest(
        call_filter(inv), inv.get("group") or "account", "export" in inv.flags
    )
    return await reports.summary(ctx, request)


async def _chart(ctx: Context, inv: Invocation) -> Result:
    return await reportchart.chart(ctx, call_filter(inv))


async def _recording(ctx: Context, inv: Invocation) -> Result:
    return await reports.recording(ctx, inv.need("uuid"))


REPORT = Command(
    name="report",
    summary="call records, summaries (ASR, ACD, profit), charts and recordings",
    verbs=(
        Verb(
            "cdr",
            "the calls, newest first, a page at a time (export: all as CSV)",
            _cdr,
            params=(*FILTERS, Param("page", "the cursor a page gives for the next one")),
            flags=(*PERIOD_FLAGS, EXPORT_FLAG),
        ),
        Verb(
            "summary",
            "attempted and completed calls, duration, ASR, ACD, MCD, billable, debit, cost, "
            "profit per group",
            _summary,
            params=(
                *FILTERS,
                Param("group", "what each row is (default account)", reports.GROUPS),
            ),
            flags=(*PERIOD_FLAGS, EXPORT_FLAG),
        ),
        Verb(
            "chart",
            "a picture of calls (attempted, completed) and ASR over the period",
            _chart,
            params=FILTERS,
            flags=PERIOD_FLAGS,
        ),
        Verb(
            "recording",
            "a call's recording (WAV), for the call's account and those above it",
            _recording,
            params=(Param("uuid", "the call's UUID", required=True, positional=True),),
        ),
    ),
    examples=(
        "report cdr week",
        "report cdr from:2026-11-01 to:2026-11-30 account:1001 export",
        "report summary month group:day",
        "report summary week group:destination direction:outbound export",
        "report chart month",
        "report recording 6f1c9a2e-0b7d-4b1a-9a55-3c1d2e4f5a6b",
    ),
)
