"""Expected refusals: each carries the sentence the person who asked will read."""

from __future__ import annotations


class Refusal(Exception):
    """Something we decline to do, for a reason the user can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(Refusal):
    """The actor may not do this (role or account)."""


class NotFound(Refusal):
    """The named object does not exist or is not visible to the actor."""


class Invalid(Refusal):
    """The request is well-formed but its values are not acceptable.

    `fields` maps a field name to what is wrong with it, so a form can show each error in place.
    """

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}
