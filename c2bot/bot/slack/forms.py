"""Building Slack modals and reading their submissions: what every form shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from c2bot.bot.slack.blocks import Block, plain
from c2bot.handlers.errors import Invalid, Refusal

VALUE = "value"
ERROR_MAX = 150  # Slack shows an input's error on one short line
MAX_FILES = 5


def option(label: str, value: str, description: str | None = None) -> Block:
    rendered: Block = {"text": plain(label), "value": value}
    if description:
        rendered["description"] = plain(description)
    return rendered


def select(
    block_id: str, label: str, options: list[tuple[str, str]], initial: str | None = None
) -> Block:
    rendered = [option(text, value) for text, value in options]
    element: Block = {"type": "static_select", "action_id": VALUE, "options": rendered}
    chosen_option = next((o for o in rendered if o["value"] == initial), None)
    if chosen_option is not None:
        element["initial_option"] = chosen_option
    return input_block(block_id, label, element)


def text_input(
    block_id: str,
    label: str,
    multiline: bool = False,
    max_length: int | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": VALUE, "multiline": multiline}
    if max_length:
        element["max_length"] = max_length
    block = input_block(block_id, label, element, optional)
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def file_input(label: str) -> Block:
    element: Block = {"type": "file_input", "action_id": VALUE, "max_files": MAX_FILES}
    return input_block("files", label, element, optional=True)


def input_block(block_id: str, label: str, element: Block, optional: bool = False) -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000)}
    return block | {"element": element, "optional": optional}


def modal(callback_id: str, title: str, submit: str, blocks: list[Block]) -> Block:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


def chosen(values: dict[str, Any], block_id: str) -> str | None:
    """What the person typed or picked in one input of a submitted modal."""
    element = (values.get(block_id) or {}).get(VALUE) or {}
    if "selected_option" in element:
        picked = (element.get("selected_option") or {}).get("value")
        return str(picked) if picked is not None else None
    value = element.get("value")
    return str(value) if value is not None else None


def files_of(values: dict[str, Any]) -> list[Any]:
    """The Slack files attached in the modal's file input."""
    return list(((values.get("files") or {}).get(VALUE) or {}).get("files") or [])


def form_errors(
    refusal: Refusal,
    blocks: set[str],
    fallback: str,
    block_of_field: Mapping[str, str] | None = None,
    whole_message_if_single: bool = False,
) -> dict[str, str]:
    """A refusal as `response_action: errors`, each message next to the field it is about.

    A refusal that names no field of this form is shown at `fallback` (or at `account`).
    """
    fields = refusal.fields if isinstance(refusal, Invalid) else {}
    rename = block_of_field or {}
    errors: dict[str, str] = {}
    for name, text in fields.items():
        block = rename.get(name, name)
        if block in blocks:
            words = refusal.message if whole_message_if_single and len(fields) == 1 else text
            errors[block] = words[:ERROR_MAX]
    if not errors:
        where = "account" if "account" in blocks else fallback
        errors[where] = refusal.message[:ERROR_MAX]
    return errors
