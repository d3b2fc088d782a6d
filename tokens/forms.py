"""Console forms for tokens: they read and check input; the services enforce the rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

from access import catalog
from orgs.durations import MAX_DURATION, end_of_day, format_duration
from policies.models import IpFilter, ScopePolicy
from tokens.models import ApiTokenQuerySet, TokenRole

ROLE_CHOICES = [
    (TokenRole.ADMIN, "Admin"),
    (TokenRole.MEMBER, "Member"),
    (TokenRole.CUSTOM, "Custom"),
]
ROLE_HELP = {
    TokenRole.ADMIN: "Every permission valid for this kind of token, including ones added later.",
    TokenRole.MEMBER: "Read-only: every read permission.",
    TokenRole.CUSTOM: "Choose the access to each resource below.",
}
PRESETS = {"30d": timedelta(days=30), "90d": timedelta(days=90)}
EXPIRY_CHOICES = [
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("duration", "Custom duration"),
    ("date", "On a date"),
    ("never", "No expiry"),
]
UNIT_CHOICES = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}
GRACE_CHOICES = [
    ("0", "None: the current token stops working now"),
    ("1h", "1 hour"),
    ("1d", "1 day"),
    ("7d", "7 days"),
]
GRACE_PERIODS = {
    "0": timedelta(0),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
STATUS_CHOICES = [
    ("", "Any status"),
    ("active", "Active"),
    ("expired", "Expired"),
]


def _offer_filters(form: forms.Form, ip_filters: QuerySet[IpFilter]) -> None:
    """The IP filters the form's ``ip_filter`` field offers (those the actor sees)."""
    field = form.fields["ip_filter"]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = ip_filters


def service_errors_to_form(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ``ValidationError`` beside the fields it names (else above the form)."""
    for field_name, messages in error.message_dict.items():
        target = field_name if field_name in form.fields else None
        for message in messages:
            form.add_error(target, message)


INACTIVE_STATUS_CHOICES = [
    ("", "Any status"),
    ("revoked", "Revoked"),
    ("leaked", "Leaked"),
    ("expired", "Expired"),
]
SORT_CHOICES = [
    ("name", "Name"),
    ("created", "Created"),
    ("expires", "Expires"),
    ("last_used", "Last used"),
]
# The direction a column sorts in when first chosen: names A to Z, times newest first.
FIRST_DIRECTION = {"name": "", "created": "-", "expires": "", "last_used": "-"}


class TokenFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Filter by name or description")
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False, label="Status")
    sort = forms.ChoiceField(
        choices=[(f"{direction}{key}", label) for key, label in SORT_CHOICES for direction in "-"]
        + [(key, label) for key, label in SORT_CHOICES],
        required=False,
        label="Sort by",
    )

    def __init__(self, *args: Any, inactive: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inactive = inactive
        if inactive:
            status = self.fields["status"]
            assert isinstance(status, forms.ChoiceField)
            status.choices = INACTIVE_STATUS_CHOICES

    def filter(self, queryset: ApiTokenQuerySet, now: datetime) -> ApiTokenQuerySet:
        """Apply the valid parts of the filter and the sort to the list's tokens."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        queryset = queryset.inactive(now) if self.inactive else queryset.current(now)
        if data.get("q") and data["q"].strip():
            queryset = queryset.matching(data["q"])
        status = data.get("status")
        if status == "leaked":
            # The leak itself, not the reason's text: a leak reported after expiry revokes
            # nothing, and anyone revoking may type "Leaked:" into a reason.
            queryset = queryset.filter(leaked_at__isnull=False)
        else:
            # The main list holds expired tokens for five minutes only; Inactive all of them.
            queryset = queryset.with_status(status, now)
        return queryset.sorted_by(self.sort_key)

    @property
    def sort_key(self) -> str:
        data = getattr(self, "cleaned_data", {})
        return data.get("sort") or "name"

    def sort_columns(self, query: QueryDict) -> dict[str, dict[str, str]]:
        """Per sortable column: the link that sorts by it (or reverses it) keeping the rest of
        the query, and its ``aria-sort`` state."""
        current = self.sort_key
        columns = {}
        for key, _label in SORT_CHOICES:
            params = query.copy()
            params.pop("page", None)
            if current.removeprefix("-") == key:
                descending = current.startswith("-")
                params["sort"] = key if descending else f"-{key}"
                state = "descending" if descending else "ascending"
            else:
                params["sort"] = f"{FIRST_DIRECTION[key]}{key}"
                state = "none"
            columns[key] = {"query": params.urlencode(), "aria_sort": state}
        return columns


class VersionedForm(forms.Form):
    """Carries the version of the token the person saw, so a stale page changes nothing."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


# The permission grid: per resource, levels that each add one action to the one before, as
# GitHub's fine-grained tokens offer them ("Read-only", "Read and write").
ACCESS_LEVELS = (
    ("none", "No access", ()),
    ("read", "Read", ("read",)),
    ("write", "Read and write", ("read", "write")),
    ("delete", "Read, write and delete", ("read", "write", "delete")),
)


GRID_PREFIX = "access-"


def permission_names(values: list[str] | tuple[str, ...]) -> list[str]:
    """The permission names in submitted values: a grid level sends several, space-separated."""
    return [name for value in values for name in str(value).split()]


def submitted_permissions(data: QueryDict) -> list[str]:
    """The permissions a form sent: ``permissions`` values and the grid's row per resource."""
    values = list(data.getlist("permissions"))
    for key in data:
        if key.startswith(GRID_PREFIX):
            values.extend(data.getlist(key))
    return permission_names(values)


class PermissionNamesField(forms.MultipleChoiceField):
    """Permission names, from checkboxes (one each) or the grid (a level's names in one value)."""

    def to_python(self, value: object) -> list[str]:
        return permission_names(super().to_python(value))


class PermissionsMixin(forms.Form):
    role = forms.ChoiceField(
        choices=ROLE_CHOICES, widget=forms.RadioSelect, initial=TokenRole.MEMBER, label="Role"
    )
    permissions = PermissionNamesField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple, label="Permissions"
    )

    def setup_permissions(self, scope: str, held: frozenset[str]) -> None:
        self.scope = scope
        self.held = held
        permissions = self.fields["permissions"]
        assert isinstance(permissions, forms.MultipleChoiceField)
        permissions.choices = [(name, name) for name in sorted(catalog.valid_in(scope))]
        if self.is_bound and isinstance(self.data, QueryDict):
            # The grid sends one value per resource; the field reads them as one list.
            data = self.data.copy()
            data.setlist("permissions", submitted_permissions(self.data))
            self.data = data

    def selected_permissions(self) -> frozenset[str]:
        """What the form shows as granted: the role's permissions, or the ones picked."""
        role = self["role"].value()
        picked = self._selected_permissions()
        if role not in TokenRole.values:
            role = TokenRole.CUSTOM
        return catalog.for_role(role, self.scope, picked)

    def permission_grid(self) -> list[dict[str, Any]]:
        """One row per resource: its access levels, the one selected, and which may be granted.

        A level whose permissions the viewer does not all hold cannot be chosen, unless it is
        what is selected already (keeping a token as it is grants nothing). A selection that
        is no level (say, write without read, set through the API) is offered as it is.
        """
        selected = self.selected_permissions()
        rows = []
        for resource, permissions in catalog.grouped(self.scope):
            actions = {permission.action: permission.name for permission in permissions}
            current = sorted(name for name in actions.values() if name in selected)
            levels = []
            for value, label, level_actions in ACCESS_LEVELS:
                if level_actions and level_actions[-1] not in actions:
                    continue
                names = [actions[action] for action in level_actions if action in actions]
                levels.append(
                    {
                        "value": value,
                        "label": label,
                        "names": names,
                        "checked": sorted(names) == current,
                        "held": all(name in self.held for name in names),
                    }
                )
            if not any(level["checked"] for level in levels):
                levels.append(
                    {
                        "value": "as-is",
                        "label": "As it is",
                        "names": current,
                        "checked": True,
                        "held": True,
                    }
                )
            for level in levels:
                level["disabled"] = not level["held"] and not level["checked"]
            rows.append(
                {
                    "resource": resource,
                    "levels": levels,
                    "current": current,
                    "any_disabled": any(level["disabled"] for level in levels),
                }
            )
        return rows

    def role_options(self) -> list[dict[str, Any]]:
        current = self["role"].value()
        return [
            {
                "value": value,
                "label": label,
                "help": ROLE_HELP[value],
                "checked": value == current,
                "permissions": " ".join(sorted(catalog.for_role(value, self.scope)))
                if value != TokenRole.CUSTOM
                else "",
            }
            for value, label in ROLE_CHOICES
        ]

    def _selected_permissions(self) -> list[str]:
        if self.is_bound:
            key, data = self.add_prefix("permissions"), self.data
            names = data.getlist(key) if isinstance(data, MultiValueDict) else data.get(key, [])
            return permission_names(names)
        return list(self.initial.get("permissions", []))


class CreateTokenForm(PermissionsMixin, forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    description = forms.CharField(
        required=False,
        max_length=5000,
        label="Description (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    expiry = forms.ChoiceField(
        choices=EXPIRY_CHOICES, widget=forms.RadioSelect, label="Expiry", initial="90d"
    )
    expiry_amount = forms.IntegerField(
        required=False, min_value=1, max_value=3650 * 24 * 60, label="Expires after"
    )
    expiry_unit = forms.ChoiceField(
        choices=UNIT_CHOICES, required=False, initial="days", label="Unit"
    )
    expiry_date = forms.DateField(
        required=False,
        label="Expiry date",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    ip_filter = forms.ModelChoiceField(
        queryset=IpFilter.objects.none(), required=False, label="IP filter", empty_label="None"
    )
    allowed_addresses = forms.CharField(
        required=False,
        label="Allowed addresses",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    field_order = ["name", "description", "role", "permissions", "expiry"]

    def __init__(
        self,
        *args: Any,
        scope: str,
        policy: ScopePolicy,
        held: frozenset[str],
        ip_filters: QuerySet[IpFilter],
        now: datetime,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.now = now
        self.setup_permissions(scope, held)
        _offer_filters(self, ip_filters)
        latest = policy.latest_expiry(now)
        self.latest_expiry = latest
        self.max_lifetime = policy.max_lifetime
        self.available_presets = {
            value for value, span in PRESETS.items() if latest is None or now + span <= latest
        }
        if not self.is_bound:
            self.initial.setdefault("expiry", self.default_expiry())
            if self.initial["expiry"] == "duration" and policy.max_lifetime is not None:
                amount, unit = _largest_unit(policy.max_lifetime)
                self.initial.setdefault("expiry_amount", amount)
                self.initial.setdefault("expiry_unit", unit)
        self.min_date = now.date().isoformat()
        self.max_date = latest.date().isoformat() if latest is not None else ""

    def default_expiry(self) -> str:
        preferred = "30d" if self.scope == "personal" else "90d"
        for choice in (preferred, "30d"):
            if choice in self.available_presets:
                return choice
        return "duration"

    def expiry_options(self) -> list[dict[str, Any]]:
        current = self["expiry"].value()
        options = []
        for value, label in EXPIRY_CHOICES:
            if value in PRESETS and value not in self.available_presets:
                continue
            if value == "never" and self.policy.requires_expiry:
                continue
            options.append({"value": value, "label": label, "checked": value == current})
        return options

    @property
    def policy_limit(self) -> str:
        if self.max_lifetime is not None:
            return f"at most {format_duration(self.max_lifetime)}"
        if self.policy.expiry_required:
            return "an expiry is required"
        return ""

    def clean_allowed_addresses(self) -> list[str]:
        text = self.cleaned_data.get("allowed_addresses") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        choice = data.get("expiry")
        if choice in PRESETS:
            data["expires_at"] = self.now + PRESETS[choice]
        elif choice == "duration":
            amount, unit = data.get("expiry_amount"), data.get("expiry_unit") or "days"
            if not amount:
                self.add_error("expiry_amount", "Enter how many minutes, hours or days.")
            else:
                span = amount * UNITS[unit]
                if span > MAX_DURATION:
                    self.add_error("expiry_amount", "A duration is at most 3650 days.")
                else:
                    data["expires_at"] = self.now + span
        elif choice == "date":
            day = data.get("expiry_date")
            if day is None:
                if "expiry_date" not in self.errors:
                    self.add_error("expiry_date", "Pick the day the token expires.")
            else:
                # The end of the chosen day (UTC), or the policy's limit on its last day.
                expires_at = end_of_day(day)
                latest = self.latest_expiry
                if latest is not None and day == latest.date() and expires_at > latest:
                    expires_at = latest
                data["expires_at"] = expires_at
        elif choice == "never":
            data["expires_at"] = None
        return data


def _largest_unit(span: timedelta) -> tuple[int, str]:
    for unit in ("days", "hours", "minutes"):
        size = UNITS[unit]
        if span >= size and span % size == timedelta(0):
            return span // size, unit
    return max(1, int(span.total_seconds() // 60)), "minutes"


class EditPermissionsForm(PermissionsMixin, VersionedForm):
    def __init__(self, *args: Any, scope: str, held: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_permissions(scope, held)


class RegenerateForm(VersionedForm):
    grace = forms.ChoiceField(
        choices=GRACE_CHOICES, widget=forms.RadioSelect, initial="0", label="Grace period"
    )

    def __init__(self, *args: Any, max_grace: timedelta, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_grace = max_grace

    def grace_options(self) -> list[dict[str, Any]]:
        current = self["grace"].value()
        return [
            {
                "value": value,
                "label": label,
                "checked": value == current,
                "allowed": GRACE_PERIODS[value] <= self.max_grace,
            }
            for value, label in GRACE_CHOICES
        ]

    def clean_grace(self) -> timedelta:
        return GRACE_PERIODS[self.cleaned_data["grace"]]


class RevokeForm(VersionedForm):
    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RenameForm(VersionedForm):
    """A token's name and description; the service applies the rule for names and text."""

    name = forms.CharField(max_length=1000, label="Name", strip=False)
    description = forms.CharField(
        required=False,
        max_length=5000,
        label="Description (optional)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class ConfirmForm(VersionedForm):
    """Restore and delete: nothing to fill in but the version."""


class AddressesForm(VersionedForm):
    """A token's IP filter and allowed addresses, where the policy lets tokens carry their own."""

    ip_filter = forms.ModelChoiceField(
        queryset=IpFilter.objects.none(), required=False, label="IP filter", empty_label="None"
    )
    allowed_addresses = forms.CharField(
        required=False,
        label="Allowed addresses",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="One address or network per line (203.0.113.7, 10.0.0.0/8, 2001:db8::/32); "
        "empty: any address.",
    )

    def __init__(self, *args: Any, ip_filters: QuerySet[IpFilter], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer_filters(self, ip_filters)

    def clean_allowed_addresses(self) -> list[str]:
        text = self.cleaned_data.get("allowed_addresses") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]
