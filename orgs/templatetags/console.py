"""Console-wide template helpers."""

from __future__ import annotations

from typing import Any

from django import template

from orgs.models import Organization

register = template.Library()


@register.simple_tag
def user_organizations(user: Any) -> list:
    """The organizations a signed-in person belongs to, for the organization switcher."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Organization.objects.for_user(user).order_by("name"))
