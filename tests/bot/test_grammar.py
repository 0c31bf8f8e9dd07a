"""The command grammar: words to invocations, and what it says when the words do not fit."""

from __future__ import annotations

import pytest

from c2bot.bot.commands import CASE, COMMANDS, split_command
from c2bot.bot.grammar import HelpRequest, Invocation, UsageError, parse, tokenize


def test_quoted_values_and_options() -> None:
    """key:"value with spaces" keeps its spaces; typographic quotes work too."""
    parsed = parse(
        CASE,
        'new type:technical priority:high subject:"Calls drop" '
        "description:\u201cSince ten o'clock\u201d",
    )
    assert isinstance(parsed, Invocation)
    assert parsed.values == {
        "type": "technical",
        "priority": "high",
        "subject": "Calls drop",
        "description": "Since ten o'clock",
    }


def test_positional_id_accepts_hash() -> None:
    """`case show #12` and `case show 12` both name case 12."""
    for text in ("show #12", "show 12"):
        parsed = parse(CASE, text)
        assert isinstance(parsed, Invocation) and parsed.number("id") == 12


def test_unknown_verb_names_the_verbs() -> None:
    """An unknown verb lists the verbs there are."""
    with pytest.raises(UsageError, match="expected one of: new, list, show"):
        parse(CASE, "frobnicate")


def test_bad_choice_names_the_choices() -> None:
    """A priority outside the list names the allowed ones and the usage."""
    with pytest.raises(UsageError, match="priority must be one of low, normal, high, highest"):
        parse(CASE, "new type:technical priority:urgent subject:x description:y")


def test_missing_required_and_unknown_option() -> None:
    """Missing parts and unknown options are named."""
    with pytest.raises(UsageError, match="needs id"):
        parse(CASE, "show")
    with pytest.raises(UsageError, match="has no option colour:"):
        parse(CASE, "list colour:red")
    with pytest.raises(UsageError, match="must be a number"):
        parse(CASE, "close twelve")


def test_form_verb_without_words_is_not_an_error() -> None:
    """`case new` with nothing after it parses (the front door opens a form)."""
    parsed = parse(CASE, "new")
    assert isinstance(parsed, Invocation) and parsed.values == {}


def test_help_everywhere() -> None:
    """`help` after any command gives that command's help."""
    for command in COMMANDS.values():
        assert isinstance(parse(command, "help"), HelpRequest)
        assert command.name in command.help()


def test_unclosed_quote() -> None:
    """An unclosed quote is explained rather than crashing."""
    with pytest.raises(UsageError, match="double quote is not closed"):
        tokenize('new subject:"oops')


def test_c2_objects_and_single_word_commands() -> None:
    """`c2 user` finds its object; `report` is one word followed by its verb."""
    command, rest = split_command("/c2", "user link U1 role:staff")
    assert command is not None and command.name == "c2 user" and rest == "link U1 role:staff"
    with pytest.raises(UsageError, match="no object 'spaceship'"):
        split_command("c2", "spaceship list")
    command, rest = split_command("/report", "summary week")
    assert command is not None and command.name == "report" and rest == "summary week"


def test_apostrophes_are_words_not_quotes() -> None:
    """`case note 12 customer's line is down` keeps the apostrophe in the text."""
    parsed = parse(CASE, "note 12 customer's line is down")
    assert isinstance(parsed, Invocation)
    assert parsed.values["text"] == "customer's line is down"


def test_secrets_are_recognised_and_hidden() -> None:
    from c2bot.bot.grammar import has_secret, redact

    line = 'fax set user:fax password:"two words" tls:yes PASSWORD:x'
    assert has_secret(line) and not has_secret("fax list password")
    assert redact(line) == "fax set user:fax password:[hidden] tls:yes PASSWORD:[hidden]"
