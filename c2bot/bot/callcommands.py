"""`/calls`: live calls on the switch: list them, hang one up, listen in from your own phone.

The words are the DESIGN grammar; each verb turns them into one call to `c2bot.handlers.calls`.
`commands.py` registers the command, so Slack, the shell and `bot@` mail accept the same lines.
"""

from __future__ import annotations

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import calls
from c2bot.handlers.context import Context

CALL_UUID = Param(
    "uuid", "the call's UUID as `calls list` shows it", required=True, positional=True
)
EXTENSION = Param(
    "extension",
    "your own SIP device that rings to listen in: its username or extension",
    required=True,
    positional=True,
)


async def _calls_list(ctx: Context, inv: Invocation) -> Result:
    return await calls.list_calls(ctx, inv.get("account"))


async def _calls_hangup(ctx: Context, inv: Invocation) -> Result:
    return await calls.hangup_call(ctx, inv.need("uuid"))


async def _calls_barge(ctx: Context, inv: Invocation) -> Result:
    return await calls.barge_call(ctx, inv.need("uuid"), inv.need("extension"))


CALLS = Command(
    name="calls",
    summary="live calls: list them, hang one up, listen in",
    verbs=(
        Verb(
            "list",
            "live calls you may see: caller, destination, duration, state, codecs, account",
            _calls_list,
            params=(Param("account", "only this account's calls"),),
        ),
        Verb(
            "hangup",
            "end a live call (resellers and staff)",
            _calls_hangup,
            params=(CALL_UUID,),
        ),
        Verb(
            "barge",
            "ring your SIP device and listen in on a call; on the phone 1 speaks to the "
            "caller, 2 to the callee, 3 to both, 0 listens again (resellers and staff)",
            _calls_barge,
            params=(CALL_UUID, EXTENSION),
        ),
    ),
    examples=(
        "calls list",
        "calls list account:1001",
        "calls hangup 5c1f0c4e-2b7a-4c43-9d64-0f6c4bd1e0aa",
        "calls barge 5c1f0c4e-2b7a-4c43-9d64-0f6c4bd1e0aa 1001-100",
    ),
)
READ_ONLY_VERBS = frozenset({"list"})
