"""Console forms for webhook endpoints: they read input; webhooks.services decides."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.datastructures import MultiValueDict

from webhooks import events as event_types

OVERLAP_CHOICES = (
    ("24h", "24 hours (recommended)"),
    ("1h", "1 hour"),
    ("7d", "7 days"),
    ("0", "None: the old secret stops signing now"),
)
OVERLAPS = {
    "0": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


def _pattern_choices() -> list[tuple[str, str]]:
    choices = [(event_types.EVERYTHING, "Every event")]
    choices += [(f"{kind}.*", f"Every {kind} event") for kind in event_types.KINDS]
    choices += [(name, name) for name in event_types.CATALOG]
    return choices


def event_groups() -> list[dict[str, Any]]:
    """The catalog by kind, for the event picker: each kind's wildcard and its events."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, description in event_types.CATALOG.items():
        groups.setdefault(name.split(".")[0], []).append((name, description))
    return [
        {"kind": kind, "wildcard": f"{kind}.*", "events": items} for kind, items in groups.items()
    ]


class EndpointForm(forms.Form):
    url = forms.CharField(label="URL", required=False, max_length=4000)
    description = forms.CharField(required=False, max_length=1000)
    events = forms.MultipleChoiceField(required=False, choices=_pattern_choices)
    active = forms.BooleanField(required=False, initial=True)
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's errors beside their fields (the rest above the form)."""
        for field_name, errors in error.message_dict.items():
            target = field_name if field_name in self.fields else None
            if field_name == NON_FIELD_ERRORS:
                target = None
            for message in errors:
                self.add_error(target, message)

    def chosen(self) -> set[str]:
        """The patterns ticked (as typed, before validation), to redraw the picker."""
        if self.is_bound:
            key, data = self.add_prefix("events"), self.data
            return set(data.getlist(key) if isinstance(data, MultiValueDict) else data.get(key, []))
        return set(self.initial.get("events", []))


class RotateForm(forms.Form):
    overlap = forms.ChoiceField(choices=OVERLAP_CHOICES, initial="24h")
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def overlap_duration(self) -> timedelta:
        return OVERLAPS[self.cleaned_data["overlap"]]


class VersionForm(forms.Form):
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            ("pending", "Pending"),
            ("delivering", "Delivering"),
            ("succeeded", "Succeeded"),
            ("failed", "Failed"),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
