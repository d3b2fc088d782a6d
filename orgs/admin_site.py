"""Django admin that writes Keyward's audit log: every add, change, delete and action.

``KeywardAdminSite`` gives every ModelAdmin registered on it, in any app, the ``Audited`` base:
the operator's username, the object, and its before and after go into an AuditEvent in the
same transaction as the change. Django's own LogEntry is still written (admin's history pages
use it); the audit log is the one that cannot be edited.

The operator's own password change (``/admin/password_change/``) is audited too, and an old
password typed wrong there counts towards the sign-in lockout.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.db import models, router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse

from orgs import audit
from orgs.models import Organization, User
from orgs.principals import Principal
from policies.addresses import client_address

# Fields whose values never go into an event: a password hash, token digests and peppers.
_SECRET_FIELDS = ("password", "digest", "pepper_id")
_MAX_LISTED = 200
_HASH = "__password_hash__"


def _is_secret(name: str) -> bool:
    return any(part in name for part in _SECRET_FIELDS)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """A model instance as the before or after of an event: its fields and many-to-many
    relations; a password as whether it is set, never its hash."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name == "password":
            password = getattr(obj, "password", "") or ""
            values["password"] = "unusable" if password.startswith("!") else "set"
        elif not _is_secret(field.name):
            values[field.attname] = field.value_from_object(obj)
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            values[field.name] = sorted(str(item) for item in getattr(obj, field.name).all())
    return values


def operator(request: HttpRequest) -> Principal:
    """The staff user acting in admin (admin lets no one else in)."""
    user = request.user
    return Principal.operator(
        user=user if isinstance(user, User) else None, address=client_address(request)
    )


def _organization_of(obj: models.Model) -> Organization | None:
    if isinstance(obj, Organization):
        return obj
    organization = getattr(obj, "organization", None)
    return organization if isinstance(organization, Organization) else None


def record(request: HttpRequest, action: str, obj: models.Model, changes: dict[str, Any]) -> None:
    audit.record(
        actor=operator(request),
        action=action,
        organization=_organization_of(obj),
        group_id=getattr(obj, "group_id", None) if not isinstance(obj, User) else None,
        object_type=obj._meta.model_name or "object",
        object_id=obj.pk,
        object_repr=str(obj),
        changes=changes,
    )


# What get_object found, per request (and per object), until log_change compares with it; kept
# beside the request rather than on it, and gone with it.
_before_by_request: WeakKeyDictionary[HttpRequest, dict[tuple[str, str], dict[str, Any]]] = (
    WeakKeyDictionary()
)


class Audited(admin.ModelAdmin):
    """The base of every ModelAdmin on the Keyward admin site (see ``KeywardAdminSite.register``).

    ``get_object`` keeps the object's state as the form found it; ``log_addition``,
    ``log_change`` and ``log_deletions``, which Django calls inside the transaction of the
    change, write the event. Actions run in one transaction with an event naming the action
    and the objects it was run on (the changes they make through services have their own).
    """

    def _before(self, request: HttpRequest) -> dict[tuple[str, str], dict[str, Any]]:
        return _before_by_request.setdefault(request, {})

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            before = snapshot(obj)
            before[_HASH] = getattr(obj, "password", None)  # compared, never recorded
            self._before(request)[(obj._meta.label, str(obj.pk))] = before
        return obj

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        record(request, "admin.added", obj, audit.diff({}, snapshot(obj)))
        return entry

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        before = dict(self._before(request).get((obj._meta.label, str(obj.pk)), {}))
        old_hash = before.pop(_HASH, None)
        after = snapshot(obj)
        changes = audit.diff(before, after)
        new_hash = getattr(obj, "password", None)
        if old_hash is not None and new_hash != old_hash and "password" not in changes:
            changes["password"] = {"before": "set", "after": "changed"}
        record(request, "admin.changed", obj, changes)
        # A second change in the same request compares with this one.
        self._before(request)[(obj._meta.label, str(obj.pk))] = {**after, _HASH: new_hash}
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        objects = list(queryset)
        for obj in objects:
            record(request, "admin.deleted", obj, audit.diff(snapshot(obj), {}))
        # The queryset's rows were read above (and cached): Django logs the same objects.
        return super().log_deletions(request, queryset)

    def response_action(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        action = request.POST.get("action", "")
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        across = request.POST.get("select_across") == "1"
        targets = queryset if across else queryset.filter(pk__in=selected)
        names = [str(obj) for obj in targets[:_MAX_LISTED]]
        with transaction.atomic(using=router.db_for_write(self.model)):
            response = super().response_action(request, queryset)
            # A page answered instead of a redirect asks for confirmation: nothing ran yet.
            ran = response is None or not isinstance(response, TemplateResponse)
            if ran and action in self.get_actions(request):
                audit.record(
                    actor=operator(request),
                    action="admin.action",
                    organization=None,
                    object_type=self.model._meta.model_name or "object",
                    object_repr=f"{action} on {len(names)} {self.model._meta.verbose_name_plural}",
                    changes={
                        "action": {"before": None, "after": action},
                        "objects": {"before": None, "after": names},
                    },
                )
        return response


class KeywardAdminSite(admin.AdminSite):
    """Django's admin site, every ModelAdmin audited, the own-password page audited and
    counted towards the sign-in lockout."""

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, Audited):
            admin_class = type(admin_class.__name__, (Audited, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The apps and models, with Django's permission groups named apart from Keyward's
        groups (both would read "Groups")."""
        app_list = super().get_app_list(request, app_label)
        for app in app_list:
            for model in app["models"]:
                if model["object_name"] == "Group" and app["app_label"] == "auth":
                    model["name"] = "Staff permission groups"
        return app_list

    # Django's own answers a redirect once the password is changed; its stub says TemplateResponse.
    def password_change(  # type: ignore[override]
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        from orgs.views import PasswordChangeView

        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=AdminPasswordChangeForm,
            template_name=self.password_change_template or "registration/password_change_form.html",
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
            audit_as_operator=True,
        )(request)
