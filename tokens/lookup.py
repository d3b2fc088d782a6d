"""The one query of the authenticated path, written once and reused.

Building this query through the ORM costs several times more than running it (compiling
eight joins and two subqueries on every request), so its SQL is generated once from the
models' own metadata and its row is turned back into model instances with ``from_db``,
exactly as the ORM would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from django.db import connection, models

from orgs.models import Group, GroupMembership, Organization, OrganizationMembership, User
from policies.models import IpFilter, ScopePolicy, SecurityPolicy
from tokens.models import ApiToken, TokenSecret

# (alias, model, nullable join): the order the row's columns come in.
_TABLES: tuple[tuple[str, type[models.Model], bool], ...] = (
    ("s", TokenSecret, False),
    ("t", ApiToken, False),
    ("u", User, False),
    ("o", Organization, False),
    ("p", ScopePolicy, False),
    ("g", Group, True),
    ("f", IpFilter, True),
)


@dataclass(frozen=True)
class SecretRow:
    secret: TokenSecret  # .token is the ApiToken, with user, organization, group, ip_filter
    scope_policy: ScopePolicy  # the policy for the token's scope
    owner_role: str | None  # the owner's organization role (personal tokens)
    owner_is_group_admin: bool


def _columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return list(model._meta.concrete_fields)


@cache
def _sql(digest_count: int, vendor: str) -> str:
    quote = connection.ops.quote_name

    def table(model: type[models.Model]) -> str:
        return quote(model._meta.db_table)

    def column(alias: str, model: type[models.Model], name: str) -> str:
        field = model._meta.get_field(name)
        if not isinstance(field, models.Field):
            raise TypeError(f"{model.__name__}.{name} is not a column")
        return f"{alias}.{quote(field.column)}"

    selected = [
        f"{alias}.{quote(field.column)}"
        for alias, model, _nullable in _TABLES
        for field in _columns(model)
    ]
    # Every name below comes from model metadata; the digests are the only values, and they
    # are bound parameters.
    role = (
        f"(SELECT m.{quote('role')} FROM {table(OrganizationMembership)} m "
        f"WHERE m.{quote('user_id')} = t.{quote('user_id')} "
        f"AND m.{quote('organization_id')} = t.{quote('organization_id')})"
    )
    group_admin = (
        f"EXISTS (SELECT 1 FROM {table(GroupMembership)} gm "
        f"JOIN {table(Group)} gg ON gg.{quote('id')} = gm.{quote('group_id')} "
        f"WHERE gm.{quote('user_id')} = t.{quote('user_id')} AND gm.{quote('role')} = 'admin' "
        f"AND gg.{quote('organization_id')} = t.{quote('organization_id')})"
    )
    scope_policy = (
        f"CASE {column('t', ApiToken, 'scope')} "
        f"WHEN 'organization' THEN {column('sp', SecurityPolicy, 'organization_tokens')} "
        f"WHEN 'group' THEN {column('sp', SecurityPolicy, 'group_tokens')} "
        f"ELSE {column('sp', SecurityPolicy, 'personal_tokens')} END"
    )
    placeholders = ", ".join(["%s"] * digest_count)
    return (
        f"SELECT {', '.join(selected)}, {role}, {group_admin} "
        f"FROM {table(TokenSecret)} s "
        f"JOIN {table(ApiToken)} t ON t.{quote('id')} = {column('s', TokenSecret, 'token')} "
        f"JOIN {table(User)} u ON u.{quote('id')} = {column('t', ApiToken, 'user')} "
        f"JOIN {table(Organization)} o "
        f"ON o.{quote('id')} = {column('t', ApiToken, 'organization')} "
        f"JOIN {table(SecurityPolicy)} sp "
        f"ON {column('sp', SecurityPolicy, 'organization')} = o.{quote('id')} "
        f"JOIN {table(ScopePolicy)} p ON p.{quote('id')} = {scope_policy} "
        f"LEFT JOIN {table(Group)} g ON g.{quote('id')} = {column('t', ApiToken, 'group')} "
        f"LEFT JOIN {table(IpFilter)} f ON f.{quote('id')} = {column('t', ApiToken, 'ip_filter')} "
        f"WHERE {column('s', TokenSecret, 'digest')} IN ({placeholders}) "
        f"LIMIT 1"
    )


@cache
def _converters(model: type[models.Model], vendor: str) -> tuple[tuple[Any, ...], ...]:
    """(position, converters, expression) for the columns the ORM would convert (e.g. SQLite
    datetimes); columns without converters are left as they come."""
    result = []
    for position, field in enumerate(_columns(model)):
        expression = field.get_col(model._meta.db_table)
        # What SQLCompiler.get_converters asks: the backend's, then the expression's (the
        # field's own, and for a foreign key its target's).
        converters = tuple(
            connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        )
        if converters:
            result.append((position, converters, expression))
    return tuple(result)


def _convert(model: type[models.Model], values: list[Any]) -> list[Any]:
    for position, converters, expression in _converters(model, connection.vendor):
        value = values[position]
        for converter in converters:
            value = converter(value, expression, connection)
        values[position] = value
    return values


def find_secret(digests: list[str]) -> SecretRow | None:
    """Fetch the secret with one of these digests, and all authentication needs, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(len(digests), connection.vendor), digests)
        row = cursor.fetchone()
    if row is None:
        return None
    instances: dict[str, models.Model | None] = {}
    position = 0
    for alias, model, nullable in _TABLES:
        fields = _columns(model)
        values = list(row[position : position + len(fields)])
        position += len(fields)
        if nullable and values[0] is None:
            instances[alias] = None
            continue
        instances[alias] = model.from_db(
            connection.alias, [field.attname for field in fields], _convert(model, values)
        )
    owner_role, owner_is_group_admin = row[position], row[position + 1]
    # from_db built each alias's model of _TABLES (nullable joins may be None).
    secret, token = cast(TokenSecret, instances["s"]), cast(ApiToken, instances["t"])
    token.user = cast(User, instances["u"])
    token.organization = cast(Organization, instances["o"])
    token.group = cast("Group | None", instances["g"])
    token.ip_filter = cast("IpFilter | None", instances["f"])
    secret.token = token
    return SecretRow(
        secret=secret,
        scope_policy=cast(ScopePolicy, instances["p"]),
        owner_role=owner_role,
        owner_is_group_admin=bool(owner_is_group_admin),
    )
