"""The case card: a case's details as Block Kit, with the staff buttons in the support thread."""

from __future__ import annotations

from datetime import datetime

from c2bot.bot.slack.blocks import (
    Block,
    cap,
    escape,
    field_sections,
    mrkdwn,
    plain,
    text_sections,
)
from c2bot.handlers.cases import CASE_TYPES, PRIORITY_MEANINGS, CaseView
from c2bot.storage.models import CaseStatus, Priority

ASSIGN = "case_assign"
PRIORITY = "case_priority"
PENDING = "case_pending"
CLOSE = "case_close"
REOPEN = "case_reopen"
CUSTOMER_HINT = "Reply in this thread to write to support about this case."


def priority_label(priority: Priority) -> str:
    return f"{priority.value.title()}: {PRIORITY_MEANINGS[priority]}"


def card_text(view: CaseView) -> str:
    """The card's notification text."""
    return escape(
        f"Case #{view.number} ({view.account_number} {view.company}, {view.priority.value}, "
        f"{view.status.value}): {view.subject}"
    )


def slack_time(view: CaseView, moment: datetime) -> str:
    """A time Slack shows in each reader's own time zone (the account's zone as fallback)."""
    return f"<!date^{int(moment.timestamp())}^{{date_short}} {{time}}|{view.local(moment)}>"


def case_fields(view: CaseView) -> tuple[tuple[str, str], ...]:
    due = f"due {slack_time(view, view.first_response_due)}"
    if view.first_response_at:
        due = f"answered {slack_time(view, view.first_response_at)} ({due})"
    return (
        ("Account", f"{view.account_number} {view.company}"),
        ("Type", CASE_TYPES[view.type]),
        ("Priority", priority_label(view.priority)),
        ("Status", view.status.value),
        ("Contact", view.contact),
        ("Assignee", view.assignee or "nobody yet"),
        ("First response", due),
        ("Source", f"{view.source.value}, {slack_time(view, view.created_at)}"),
    )


def case_card(view: CaseView, controls: bool) -> list[Block]:
    """The card: staff get buttons (`controls`), the customer's copy a hint to reply instead."""
    blocks: list[Block] = [
        {"type": "header", "text": plain(f"Case #{view.number}", 150)},
        *text_sections(f"*{escape(view.subject)}*"),
        *field_sections(case_fields(view)),
        *text_sections(escape(view.description)),
    ]
    if controls:
        blocks.append({"type": "actions", "block_id": "case_actions", "elements": buttons(view)})
    else:
        blocks.append({"type": "context", "elements": [mrkdwn(CUSTOMER_HINT)]})
    return cap(blocks)


def buttons(view: CaseView) -> list[Block]:
    number = str(view.number)
    if view.status is CaseStatus.CLOSED:
        return [_button("Reopen", REOPEN, number)]
    elements = [_button("Assign to me", ASSIGN, number), priority_select(view)]
    if view.status is not CaseStatus.PENDING:
        elements.append(_button("Pending", PENDING, number))
    close = _button("Close", CLOSE, number) | {"style": "danger"}
    close["confirm"] = {
        "title": plain("Close this case?"),
        "text": plain(f"Case #{number} will be closed; the customer is told.", 300),
        "confirm": plain("Close"),
        "deny": plain("Keep open"),
    }
    return [*elements, close]


def priority_select(view: CaseView) -> Block:
    """Option values carry the case: `12:high`."""
    options = [_option(view.number, priority) for priority in Priority]
    return {
        "type": "static_select",
        "action_id": PRIORITY,
        "placeholder": plain("Priority"),
        "options": options,
        "initial_option": _option(view.number, view.priority),
    }


def parse_priority_value(value: str) -> tuple[int, Priority]:
    number, _, priority = value.partition(":")
    return int(number), Priority(priority)


def _option(number: int, priority: Priority) -> Block:
    return {"text": plain(priority.value.title()), "value": f"{number}:{priority.value}"}


def _button(label: str, action_id: str, value: str) -> Block:
    return {"type": "button", "text": plain(label), "action_id": action_id, "value": value}
