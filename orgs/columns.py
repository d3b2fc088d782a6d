"""Model metadata for SQL written by hand: the concrete field behind a name."""

from __future__ import annotations

from typing import Any

from django.db import models


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The field ``name`` of ``model`` as a column (``.column``, ``.attname``): ``get_field``
    also answers reverse relations and generic keys, which have no column."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field
