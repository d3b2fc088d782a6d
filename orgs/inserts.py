"""New rows that point at each other, written in one statement on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery


def insert_linked(rows: Sequence[tuple[models.Model, dict[str, int]]]) -> None:
    """Insert new model instances in order, as ``save()`` would insert each, where each may
    point at earlier ones: ``(instance, {foreign key attname: position of the row it points
    at})``. Sets each instance's primary key and marks it saved.

    On PostgreSQL this is one statement (a data-modifying ``WITH`` per row, each row's keys
    read from the ``RETURNING`` of the rows before it) instead of a round trip per row: for a
    token's creation three of its five statements. Each INSERT is the ORM's own (the same
    columns, each field's ``pre_save`` and preparation); no model signals are sent, so use it
    only for models without receivers. Elsewhere the rows are saved one by one."""
    for index, (_instance, links) in enumerate(rows):
        if any(position >= index for position in links.values()):
            raise ValueError("a row may only point at rows inserted before it")
    if connection.vendor != "postgresql":
        for instance, links in rows:
            for attname, position in links.items():
                instance.__dict__[attname] = rows[position][0].pk  # the cached object stays
            instance.save(force_insert=True)
        return
    quote = connection.ops.quote_name
    parts: list[str] = []
    parameters: list[Any] = []
    for index, (instance, links) in enumerate(rows):
        meta = instance._meta
        assert meta.pk is not None and instance._state.adding
        for attname, position in links.items():
            # Read by the field's pre_save like any value; compiled as SQL, not bound.
            earlier = rows[position][0]._meta.pk
            assert earlier is not None
            # The column's name comes from the model's metadata, the rest is ours.
            instance.__dict__[attname] = RawSQL(  # noqa: S611
                f"SELECT {quote(earlier.column)} FROM row_{position}",  # noqa: S608
                (),
            )
        fields = [
            field
            for field in meta.local_concrete_fields
            if field is not meta.auto_field and not getattr(field, "generated", False)
        ]
        query = InsertQuery(type(instance))
        query.insert_values(fields, [instance])
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = [meta.pk]
        [(sql, values)] = compiler.as_sql()
        parts.append(f"row_{index} AS ({sql})")
        parameters.extend(values)
    selected = ", ".join(
        f"(SELECT {quote(instance._meta.pk.column)} FROM row_{index})"  # noqa: S608
        for index, (instance, _links) in enumerate(rows)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT {selected}", parameters)
        ids = cursor.fetchone()
    for (instance, links), pk in zip(rows, ids, strict=True):
        instance.pk = pk
        for attname, position in links.items():
            instance.__dict__[attname] = ids[position]
        instance._state.adding = False
        instance._state.db = connection.alias
