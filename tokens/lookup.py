"""The one query of the authenticated path, written once and reused.

Building this query through the ORM costs several times more than running it (compiling
eight joins and two subqueries on every request), so its SQL is generated once from the
models' own metadata. Its row is one plain tuple of only the columns authentication and the
principal need, turned into model instances without ``Model.__init__`` (no signals, no
per-field defaults): each instance is what ``from_db`` would give with the other columns
deferred (read on first use, like ``QuerySet.only``). A human owner's password hash is never
read on this path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.base import ModelState
from django.db.models.expressions import Col

from orgs.models import Group, GroupMembership, Organization, OrganizationMembership, User
from policies.models import IpFilter, ScopePolicy, SecurityPolicy
from tokens.models import ApiToken, TokenSecret

# (alias, model, nullable join, columns left out): the order the row's columns come in. What
# is left out is never read by authentication; an instance loads it when first asked.
_TABLES: tuple[tuple[str, type[models.Model], bool, frozenset[str]], ...] = (
    (
        "s",
        TokenSecret,
        False,
        frozenset({"partial_token", "created_at", "last_used_at", "last_used_address"}),
    ),
    ("t", ApiToken, False, frozenset()),
    ("u", User, False, frozenset({"password", "last_login", "date_joined"})),
    ("o", Organization, False, frozenset()),
    ("p", ScopePolicy, False, frozenset()),
    ("g", Group, True, frozenset()),
    ("f", IpFilter, True, frozenset()),
)


@dataclass(frozen=True)
class SecretRow:
    secret: TokenSecret  # .token is the ApiToken, with user, organization, group, ip_filter
    scope_policy: ScopePolicy  # the policy for the token's scope
    owner_role: str | None  # the owner's organization role (personal tokens)
    owner_is_group_admin: bool


@cache
def _columns(
    model: type[models.Model], left_out: frozenset[str]
) -> tuple[models.Field[Any, Any], ...]:
    return tuple(
        field
        for field in model._meta.concrete_fields
        if field.name not in left_out and field.attname not in left_out
    )


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
        for alias, model, _nullable, left_out in _TABLES
        for field in _columns(model, left_out)
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


# Per position in a table's columns: the converters to apply, and the column they apply to.
_Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Col], ...]
# (alias, model, nullable join, attribute names, converters): how to read one table's columns.
_Reader = tuple[str, type[models.Model], bool, tuple[str, ...], _Converters]


@cache
def _readers(vendor: str) -> tuple[_Reader, ...]:
    """Per table: (alias, model, nullable, attribute names, converters by position) where
    converters are those the ORM would apply (e.g. SQLite datetimes, JSON)."""
    readers: list[_Reader] = []
    for alias, model, nullable, left_out in _TABLES:
        fields = _columns(model, left_out)
        converters: list[tuple[int, tuple[Callable[..., Any], ...], Col]] = []
        for position, field in enumerate(fields):
            expression = field.get_col(model._meta.db_table)
            # The column's converters are its field's (the ORM asks the column the same way).
            found = tuple(
                connection.ops.get_db_converters(expression)
                + expression.get_db_converters(connection)
            )
            if found:
                converters.append((position, found, expression))
        readers.append(
            (alias, model, nullable, tuple(f.attname for f in fields), tuple(converters))
        )
    return tuple(readers)


def _instance(
    model: type[models.Model], attnames: tuple[str, ...], values: list[Any], database: str
) -> models.Model:
    """A model instance as ``from_db`` makes it, fields not selected deferred, without running
    ``__init__`` (its signals and per-field work cost more than the query on this path)."""
    instance = model.__new__(model)
    instance.__dict__.update(zip(attnames, values, strict=True))
    state = ModelState()
    state.adding = False
    state.db = database
    instance._state = state
    return instance


def find_secret(digests: list[str]) -> SecretRow | None:
    """Fetch the secret with one of these digests, and all authentication needs, in one query."""
    # The connection itself, not the proxy that looks it up on every attribute.
    database = connections[DEFAULT_DB_ALIAS]
    with database.cursor() as cursor:
        cursor.execute(_sql(len(digests), database.vendor), digests)
        row = cursor.fetchone()
    if row is None:
        return None
    instances: dict[str, models.Model | None] = {}
    position = 0
    for alias, model, nullable, attnames, converters in _readers(database.vendor):
        end = position + len(attnames)
        if nullable and row[position] is None:
            instances[alias] = None
            position = end
            continue
        values = list(row[position:end])
        position = end
        for index, functions, expression in converters:
            value = values[index]
            for function in functions:
                value = function(value, expression, database)
            values[index] = value
        instances[alias] = _instance(model, attnames, values, database.alias)
    owner_role, owner_is_group_admin = row[position], row[position + 1]
    # Neither join is nullable: both instances are there.
    secret = cast(TokenSecret, instances["s"])
    token = cast(ApiToken, instances["t"])
    # The related objects are cached as select_related would cache them.
    fields_cache = token._state.fields_cache
    fields_cache["user"] = instances["u"]
    fields_cache["organization"] = instances["o"]
    fields_cache["group"] = instances["g"]
    fields_cache["ip_filter"] = instances["f"]
    secret._state.fields_cache["token"] = token
    return SecretRow(
        secret=secret,
        scope_policy=cast(ScopePolicy, instances["p"]),
        owner_role=owner_role,
        owner_is_group_admin=bool(owner_is_group_admin),
    )
