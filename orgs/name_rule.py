"""Bringing stored names under the one rule of ``orgs.names``: finding the rows that break it
(``manage.py check_names``) and fixing them (the data migrations that introduced the rule),
each fix written to the audit log with the name before (any token in it masked) and after."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orgs import names

MAX_LENGTH = 100
ACTOR = "Keyward (name rule)"


@dataclass(frozen=True)
class Kind:
    """One kind of named row: its model label, the fields that make its scope, and how the
    audit log calls it."""

    label: str
    scope: tuple[str, ...]
    object_type: str
    action: str
    group_field: str | None = None


KINDS = (
    Kind(
        "tokens.ApiToken",
        ("organization_id", "scope", "group_id", "user_id"),
        "api_token",
        "token.renamed",
        "group_id",
    ),
    Kind("orgs.Group", ("organization_id",), "group", "group.updated", "pk"),
    Kind("policies.IpFilter", ("organization_id",), "ip_filter", "ip_filter.changed"),
)


def mask_tokens(text: str) -> str:
    """Replace anything shaped like a token by its prefix and last four characters."""
    return names.TOKEN_SHAPE.sub(lambda match: f"{match.group(0)[:4]}…{match.group(0)[-4:]}", text)


def repaired(name: str, fallback: str) -> str:
    """The closest name that keeps the rule: forbidden characters dropped (line breaks become
    spaces), tokens masked, spaces tidied, length capped."""
    text = unicodedata.normalize("NFC", name or "")
    kept = []
    for character in text:
        category = unicodedata.category(character)
        if character in "\r\n\t" or category == "Zs":
            kept.append(" ")
        elif category in ("Cc", "Cf") or character == "\x7f":
            continue
        else:
            kept.append(character)
    cleaned = re.sub(r" {2,}", " ", mask_tokens("".join(kept))).strip()[:MAX_LENGTH].strip()
    return cleaned or fallback


def problems(name: str) -> list[str]:
    """What breaks the rule in a stored name (empty when nothing)."""
    return names.clean(name, label="The name", max_length=MAX_LENGTH).errors


def scope_of(row: Any, kind: Kind) -> tuple:
    values = [getattr(row, field) for field in kind.scope]
    if kind.label == "tokens.ApiToken":
        scope, group_id, user_id = values[1], values[2], values[3]
        # Organization tokens share the organization; group ones their group; personal ones
        # their owner in the organization.
        values = [values[0], scope, group_id if scope == "group" else None]
        values.append(user_id if scope == "personal" else None)
    return tuple(values)


def fix_rows(apps: Any, kind: Kind) -> Iterator[tuple[Any, str, str]]:
    """Give every row of a kind its name key, repairing names that break the rule or that a
    look-alike took first in the same scope. Yields (row, name before, name after) for each
    renamed row; the caller records it."""
    model = apps.get_model(*kind.label.split("."))
    taken: dict[tuple, set[str]] = {}
    for row in model.objects.order_by("pk").iterator():
        before = row.name
        name = repaired(before, f"{kind.object_type.replace('_', ' ')} {row.pk}")
        scope = scope_of(row, kind)
        used = taken.setdefault(scope, set())
        candidate, number = name, 1
        while names.name_key(candidate) in used:
            number += 1
            suffix = f" ({number})"
            candidate = name[: MAX_LENGTH - len(suffix)] + suffix
        used.add(names.name_key(candidate))
        model.objects.filter(pk=row.pk).update(name=candidate, name_key=names.name_key(candidate))
        if candidate != before:
            yield row, before, candidate


def record_fix(apps: Any, kind: Kind, row: Any, before: str, after: str) -> None:
    """The audit event of a repaired name, written as the migration runs."""
    audit_event = apps.get_model("orgs", "AuditEvent")
    organization = (
        apps.get_model("orgs", "Organization").objects.filter(pk=row.organization_id).first()
    )
    group_id = getattr(row, kind.group_field) if kind.group_field else None
    audit_event.objects.create(
        organization=organization,
        organization_name=organization.name if organization else "",
        group_id=group_id,
        actor=None,
        actor_name=ACTOR,
        actor_kind="system",
        action=kind.action,
        object_type=kind.object_type,
        object_id=str(row.pk),
        object_repr=after[:200],
        changes={"name": {"before": mask_tokens(before), "after": after}},
    )


def breaches(apps: Any) -> Iterator[dict[str, Any]]:
    """Every stored name that breaks the rule now, with what is wrong (token-shaped parts
    masked): for ``check_names``."""
    for kind in KINDS:
        model = apps.get_model(*kind.label.split("."))
        seen: dict[tuple, dict[str, int]] = {}
        for row in model.objects.order_by("pk").iterator():
            found = problems(row.name)
            key = names.name_key(row.name)
            first = seen.setdefault(scope_of(row, kind), {}).setdefault(key, row.pk)
            if first != row.pk:
                found.append(f"looks the same as {kind.object_type} {first} in its scope")
            if found:
                yield {
                    "kind": kind.object_type,
                    "id": row.pk,
                    "organization_id": row.organization_id,
                    "name": mask_tokens(row.name),
                    "problems": found,
                }
    organization_model = apps.get_model("orgs", "Organization")
    for organization in organization_model.objects.order_by("pk").iterator():
        found = problems(organization.name)
        if found:
            yield {
                "kind": "organization",
                "id": organization.pk,
                "organization_id": organization.pk,
                "name": mask_tokens(organization.name),
                "problems": found,
            }


def migrate(kind_label: str) -> Any:
    """A RunPython function for one kind."""
    kind = next(kind for kind in KINDS if kind.label == kind_label)

    def forwards(apps: Any, schema_editor: Any) -> None:
        for row, before, after in list(fix_rows(apps, kind)):
            record_fix(apps, kind, row, before, after)
            if kind.label == "tokens.ApiToken":
                apps.get_model("orgs", "User").objects.filter(
                    pk=row.user_id, kind="technical"
                ).update(display_name=after)

    return forwards
