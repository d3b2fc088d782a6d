"""Console-wide template helpers."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from orgs.models import Organization

register = template.Library()


@register.simple_tag
def optional_url(name: str, *args: Any, **kwargs: Any) -> str:
    """Reverse a URL name, or '' when it does not exist (yet): pages of other apps are
    linked as soon as they are there, and never break a page before."""
    try:
        return reverse(name, args=args, kwargs=kwargs)
    except NoReverseMatch:
        return ""


@register.simple_tag
def user_organizations(user: Any) -> list:
    """The organizations a signed-in person belongs to, for the organization switcher."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Organization.objects.for_user(user).order_by("name"))
