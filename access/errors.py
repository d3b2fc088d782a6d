"""Domain errors raised by the access layer and the services, translated by views, the API,
admin and commands.

Bad input is Django's ``ValidationError`` with a dict of field names; these are the rest.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotFound(DomainError):
    """The object does not exist, or the actor may not see it (the two look the same)."""

    code = "not_found"


class Forbidden(DomainError):
    """The actor sees the object but lacks the right or the permission to do this."""

    code = "forbidden"

    def __init__(self, message: str, *, permission: str | None = None) -> None:
        self.permission = permission
        super().__init__(message)


class PolicyViolation(DomainError):
    """The organization's security policy forbids this; ``setting`` names the rule."""

    code = "policy_violation"

    def __init__(self, message: str, *, setting: str) -> None:
        self.setting = setting
        super().__init__(message)


class VersionConflict(DomainError):
    """Someone changed the object since the caller read it; nothing was changed."""

    code = "version_conflict"

    def __init__(self, current_version: int) -> None:
        self.current_version = current_version
        super().__init__(
            f"This was changed by someone else since you loaded it (now version "
            f"{current_version}). Reload and try again."
        )


class TokenLeaked(DomainError):
    """The token's secret was reported leaked: it is public, so the token never works again
    (it can only be deleted, and replaced by a new one)."""

    code = "token_leaked"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "This token's secret leaked, so it can never be restored: delete it and create "
            "a replacement."
        )


def describe(error: ValidationError) -> str:
    """A ValidationError as one line for a command's output: ``field: message; ...``."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {message}"
            for field, messages in error.message_dict.items()
            for message in messages
        )
    return "; ".join(error.messages)
