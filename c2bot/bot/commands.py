"""The catalogue of commands: each verb's words, help, and the handler it turns into.

Every front door goes through `run_line` / `run_command`, so Slack, the shell and email accept
exactly the same words and give the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from c2bot.bot import (
    billingcommands,
    callcommands,
    customercommands,
    devicecommands,
    faxcommands,
    pbxcommands,
    portcommands,
    ratecommands,
    reportcommands,
    routecommands,
)
from c2bot.bot.grammar import (
    Command,
    HelpRequest,
    Invocation,
    Param,
    Result,
    UsageError,
    Verb,
    parse,
    tokenize,
    wants_form,
)
from c2bot.handlers import accounts, cases
from c2bot.handlers.context import Context
from c2bot.handlers.replies import OpenForm, Reply
from c2bot.storage.models import CaseStatus, CaseType, Priority, Role

CASE_ID = Param(
    "id", "the case number, e.g. 12 or #12", required=True, positional=True, integer=True
)
TYPES = tuple(t.value for t in CaseType)
PRIORITIES = tuple(p.value for p in Priority)
NEW_CASE_USAGE = (
    "case new type:technical|invoice|pricing priority:low|normal|high|highest "
    'subject:"..." description:"..." [contact:EMAIL] [account:N]'
)


def _view(view: cases.CaseView) -> Reply:
    return view.as_reply()


async def _case_new(ctx: Context, inv: Invocation) -> Result:
    request = cases.NewCase(
        type=CaseType(inv.get("type") or "technical"),
        priority=Priority(inv.get("priority") or "normal"),
        subject=inv.get("subject") or "",
        description=inv.get("description") or "",
        account=inv.get("account"),
        contact=inv.get("contact"),
    )
    view = await cases.open_case(ctx, request)
    reply = view.as_reply()
    return Reply(
        title=f"Case #{view.number} opened: {view.subject}",
        fields=reply.fields,
        text=f"First response due {view.local(view.first_response_due)}.",
    )


async def _case_list(ctx: Context, inv: Invocation) -> Result:
    status, priority = inv.get("status"), inv.get("priority")
    query = cases.CaseFilter(
        status=CaseStatus(status) if status and status != "all" else None,
        include_closed=status == "all" or "all" in inv.flags,
        account=inv.get("account"),
        priority=Priority(priority) if priority else None,
        assigned_to_me="mine" in inv.flags,
    )
    return await cases.list_cases(ctx, query)


async def _case_show(ctx: Context, inv: Invocation) -> Result:
    return _view(await cases.show_case(ctx, inv.number("id")))


async def _case_close(ctx: Context, inv: Invocation) -> Result:
    view = await cases.close_case(ctx, inv.number("id"))
    return Reply(title=f"Case #{view.number} closed.")


async def _case_reopen(ctx: Context, inv: Invocation) -> Result:
    view = await cases.reopen_case(ctx, inv.number("id"))
    return Reply(title=f"Case #{view.number} reopened.")


async def _case_pending(ctx: Context, inv: Invocation) -> Result:
    view = await cases.set_pending(ctx, inv.number("id"))
    return Reply(title=f"Case #{view.number} is pending (waiting for the customer).")


async def _case_assign(ctx: Context, inv: Invocation) -> Result:
    view = await cases.assign_to_me(ctx, inv.number("id"))
    return Reply(title=f"Case #{view.number} is assigned to you.")


async def _case_priority(ctx: Context, inv: Invocation) -> Result:
    view = await cases.set_priority(ctx, inv.number("id"), Priority(inv.need("level")))
    return Reply(title=f"Case #{view.number} now has priority {view.priority.value}.")


async def _case_revoke(ctx: Context, inv: Invocation) -> Result:
    revoked = await cases.revoke_reply_addresses(ctx, inv.number("id"))
    return Reply(
        title=f"Revoked {revoked} reply address(es) of case #{inv.number('id')}; "
        "the next mail to the customer carries a new one."
    )


async def _case_note(ctx: Context, inv: Invocation) -> Result:
    message = cases.CaseMessageIn(number=inv.number("id"), body=inv.need("text"))
    await cases.add_note(ctx, message)
    return Reply(title=f"Internal note added to case #{message.number}.")


async def _case_reply(ctx: Context, inv: Invocation) -> Result:
    message = cases.CaseMessageIn(number=inv.number("id"), body=inv.need("text"))
    if ctx.actor.is_staff:
        await cases.staff_reply(ctx, message)
        return Reply(title=f"Answer sent on case #{message.number}.")
    await cases.customer_reply(ctx, message)
    return Reply(title=f"Your message was added to case #{message.number}.")


CASE = Command(
    name="case",
    summary="support cases: open one, follow it, answer it",
    verbs=(
        Verb(
            "new",
            "open a case (in Slack, with no words: a form)",
            _case_new,
            form="case_new",
            params=(
                Param(
                    "type",
                    "technical (a service), invoice (invoice or financial details) or pricing",
                    TYPES,
                    required=True,
                ),
                Param(
                    "priority",
                    "low: non-urgent, no interruption; normal: services work; "
                    "high: partial outage, workaround exists; highest: complete outage",
                    PRIORITIES,
                    required=True,
                ),
                Param("subject", "one line", required=True),
                Param("description", "what happened, what you need", required=True),
                Param("contact", "one of the account's contacts (email or name); you by default"),
                Param("account", "account number (resellers and staff)"),
            ),
        ),
        Verb(
            "list",
            "open cases you may see",
            _case_list,
            params=(
                Param(
                    "status",
                    "open, pending, closed or all",
                    (*(s.value for s in CaseStatus), "all"),
                ),
                Param("account", "only this account"),
                Param("priority", "only this priority", PRIORITIES),
            ),
            flags=(("mine", "only cases assigned to me"), ("all", "closed cases too")),
        ),
        Verb("show", "a case with its history", _case_show, params=(CASE_ID,)),
        Verb("close", "close a case", _case_close, params=(CASE_ID,)),
        Verb("reopen", "reopen a closed case", _case_reopen, params=(CASE_ID,)),
        Verb(
            "reply",
            "write on a case (staff: answer the customer)",
            _case_reply,
            params=(CASE_ID,),
            rest="text",
        ),
        Verb(
            "note",
            "internal note, never sent to the customer (staff)",
            _case_note,
            params=(CASE_ID,),
            rest="text",
        ),
        Verb("assign", "take a case (staff)", _case_assign, params=(CASE_ID,)),
        Verb(
            "priority",
            "change the priority (staff)",
            _case_priority,
            params=(
                CASE_ID,
                Param("level", "the new priority", PRIORITIES, required=True, positional=True),
            ),
        ),
        Verb("pending", "waiting for the customer (staff)", _case_pending, params=(CASE_ID,)),
        Verb(
            "revoke",
            "retire the case's reply addresses, e.g. after spam (staff)",
            _case_revoke,
            params=(CASE_ID,),
        ),
    ),
    examples=(
        'case new type:technical priority:high subject:"Calls drop" description:"Since 10:00"',
        "case list status:all account:1001",
        "case show 12",
    ),
)


async def _contact_add(ctx: Context, inv: Invocation) -> Result:
    return await accounts.add_contact(
        ctx,
        accounts.NewContact(
            account=inv.need("account"),
            name=inv.need("name"),
            email=inv.need("email"),
            phone=inv.get("phone"),
            prefers_email=inv.get("prefers") == "email",
        ),
    )


async def _user_link(ctx: Context, inv: Invocation) -> Result:
    return await accounts.link_user(
        ctx,
        accounts.LinkUser(
            slack_user_id=inv.get("slack_user_id"),
            role=Role(inv.need("role")),
            account=inv.get("account"),
            email=inv.get("email"),
            name=inv.get("name") or "",
        ),
    )


C2_OBJECTS = (
    customercommands.CUSTOMER,
    Command(
        "c2 contact",
        "people at an account we may talk to about cases",
        (
            Verb(
                "add",
                "add or update a contact",
                _contact_add,
                params=(
                    Param("account", "account number", required=True, positional=True),
                    Param("name", "full name", required=True),
                    Param("email", "email address", required=True),
                    Param("phone", "phone number"),
                    Param("prefers", "how to answer cases: email or slack", ("email", "slack")),
                ),
            ),
        ),
    ),
    Command(
        "c2 user",
        "people who use c2bot",
        (
            Verb(
                "link",
                "link a Slack user to an account with a role (staff)",
                _user_link,
                params=(
                    Param("slack_user_id", "Slack user id, e.g. U012AB3CD", positional=True),
                    Param(
                        "role",
                        "customer, reseller, staff or admin",
                        tuple(r.value for r in Role),
                        required=True,
                    ),
                    Param("account", "account number (customer and reseller)"),
                    Param("email", "email address (lets them use c2bot by email)"),
                    Param("name", "display name"),
                ),
            ),
        ),
    ),
)

ROUTE_OBJECTS = (
    *faxcommands.ROUTE_OBJECTS,
    *devicecommands.ROUTE_OBJECTS,
    *pbxcommands.ROUTE_OBJECTS,
)
ALL_C2_OBJECTS = (
    *C2_OBJECTS,
    *devicecommands.C2_OBJECTS,
    *pbxcommands.C2_OBJECTS,
    *ratecommands.C2_OBJECTS,
    *billingcommands.C2_OBJECTS,
)
COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        CASE,
        faxcommands.FAX,
        callcommands.CALLS,
        portcommands.PORT,
        reportcommands.REPORT,
        *ALL_C2_OBJECTS,
        *ROUTE_OBJECTS,
    )
}
# Commands whose first word names an object: `c2 user link ...`, `route did set ...`.
GROUPS: dict[str, tuple[Command, ...]] = {"c2": ALL_C2_OBJECTS, "route": ROUTE_OBJECTS}
# Verbs of a group that name no object: `route test NUMBER`, `route undo`.
GROUP_ACTIONS: dict[str, Command] = {"route": routecommands.ROUTE_ACTIONS}
PLANNED: tuple[str, ...] = ()
FORM_USAGE = {
    "case_new": NEW_CASE_USAGE,
    faxcommands.FAX_SEND: faxcommands.SEND_USAGE,
    **devicecommands.FORM_USAGE,
    **pbxcommands.FORM_USAGE,
    **portcommands.FORM_USAGE,
    **customercommands.FORM_USAGE,
}


def overview() -> str:
    lines = ["c2bot commands (type `COMMAND help` for details):"]
    lines += [f"    {c.name}: {c.summary}" for c in COMMANDS.values()]
    return "\n".join(lines)


@dataclass(frozen=True)
class Outcome:
    """What a front door renders: a result, or help text."""

    result: Result

    @property
    def reply(self) -> Reply:
        """The result as a reply; a form becomes its one-line usage (doors without forms)."""
        if isinstance(self.result, OpenForm):
            return Reply(title=f"Give the details in one line:\n`{self.result.usage}`")
        return self.result


def split_command(name: str, text: str) -> tuple[Command | None, str]:
    """`c2 user link ...` and `route did set ...` name the object after the command; other
    commands are one word."""
    name = name.lstrip("/").lower()
    if name in GROUPS:
        obj, _, rest = text.strip().partition(" ")
        if not obj or obj.lower() == "help":
            return None, ""
        found = COMMANDS.get(f"{name} {obj.lower()}")
        actions = GROUP_ACTIONS.get(name)
        if found is None and actions is not None and actions.verb(obj.lower()) is not None:
            return actions, text
        if found is None:
            objects = ", ".join(c.name.split()[1] for c in GROUPS[name])
            if actions is not None and actions.verbs:
                objects += ", or " + ", ".join(v.name for v in actions.verbs)
            raise UsageError(f"{name} has no object {obj!r}; expected one of: {objects}.")
        return found, rest
    if name in PLANNED:
        raise UsageError(f"/{name} is not enabled on this c2bot yet; type `help` for what is.")
    found = COMMANDS.get(name)
    if found is None and name != "help":
        raise UsageError(f"There is no command {name!r}. {overview()}")
    return found, text


async def run_command(ctx: Context, name: str, text: str, forms: bool = False) -> Outcome:
    """Run one command; with `forms`, a form verb given no words asks for its form instead."""
    command, rest = split_command(name, text)
    if command is None:
        return Outcome(Reply(title=overview()))
    parsed = parse(command, rest)
    if isinstance(parsed, HelpRequest):
        return Outcome(Reply(title=command.help()))
    verb = command.verb(parsed.verb)
    assert verb is not None
    if wants_form(verb, parsed):
        usage = FORM_USAGE.get(verb.form or "", verb.usage(command.name))
        form = Outcome(OpenForm(form=verb.form or "", usage=usage))
        return form if forms else Outcome(form.reply)
    return Outcome(await verb.run(ctx, parsed))


READ_ONLY_VERBS = (
    frozenset({"list", "show"})
    | faxcommands.READ_ONLY_VERBS
    | devicecommands.READ_ONLY_VERBS
    | pbxcommands.READ_ONLY_VERBS
    | ratecommands.READ_ONLY_VERBS
    | callcommands.READ_ONLY_VERBS
    | portcommands.READ_ONLY_VERBS
    | customercommands.READ_ONLY_VERBS
    | billingcommands.READ_ONLY_VERBS
    | reportcommands.READ_ONLY_VERBS
    | routecommands.READ_ONLY_VERBS
)


def changes_something(line: str) -> bool:
    """Whether a command line would change anything (all but help, reading verbs and forms).

    Lines that do not parse change nothing: running them only explains the mistake. A verb
    given no words only asks for its form; the form's submission is the change.
    """
    first, _, rest = line.strip().partition(" ")
    try:
        command, rest = split_command(first, rest)
        parsed = parse(command, rest) if command is not None else None
    except UsageError:
        return False
    if command is None or not isinstance(parsed, Invocation):
        return False
    verb = command.verb(parsed.verb)
    return parsed.verb not in READ_ONLY_VERBS and not (verb and wants_form(verb, parsed))


# Routing changes by email wait for a reply for a short while only: a forged From address must
# not leave a change lying around that a later, careless "yes" would set off.
ROUTING_WORDS = frozenset({"route", "calls"})
ROUTING_OBJECTS = frozenset(
    {"device", "did", "ringgroup", "queue", "ivr", "timecondition", "conference", "confprofile"}
    | {"recording"}
)
ROUTING_CONFIRM = timedelta(minutes=15)
OTHER_CONFIRM = timedelta(hours=24)


def confirm_within(line: str) -> timedelta:
    """How long an emailed change waits for its confirmation reply."""
    words = line.strip().lstrip("/").lower().split()
    if words and words[0] in ROUTING_WORDS:
        return ROUTING_CONFIRM
    if len(words) > 1 and words[0] == "c2" and words[1] in ROUTING_OBJECTS:
        return ROUTING_CONFIRM
    return OTHER_CONFIRM


def describe_window(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} hours" if minutes % 60 == 0 else f"{minutes} minutes"


async def run_line(ctx: Context, line: str) -> Outcome:
    """A whole line such as `case list` or `/case show 3` (shell and email)."""
    words = tokenize(line.strip())
    if not words:
        return Outcome(Reply(title=overview()))
    first, _, rest = line.strip().partition(" ")
    return await run_command(ctx, first, rest)
