"""Console forms for IP filters and the security policy: they read input; services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from orgs.durations import to_text
from policies.models import IpFilter, ScopePolicy

SHOWN_ERRORS = 50
LINE_SHOWN = 200
RULES_PLACEHOLDER = (
    "# One rule per line; the first match decides, no match is denied.\nallow 10.0.0.0/8\ndeny all"
)


class IpFilterForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    description = forms.CharField(required=False, max_length=1000)
    rules_text = forms.CharField(
        label="Rules",
        required=False,
        strip=False,
        max_length=40_000,
        widget=forms.Textarea(
            attrs={"rows": 12, "spellcheck": "false", "placeholder": RULES_PLACEHOLDER}
        ),
        help_text="allow|deny followed by an address, a CIDR block or all; # starts a comment.",
    )
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line_errors: dict[int, str] = {}

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's errors beside their fields; keep each bad rule's line number."""
        for field_name, errors in error.error_dict.items():
            target = field_name if field_name in self.fields else None
            for item in errors:
                line = (item.params or {}).get("line")
                for message in item.messages:
                    if line:
                        # The editor numbers its lines itself: keep the message without the
                        # "Line 3: " that the API's message starts with.
                        self.line_errors[line] = message.removeprefix(f"Line {line}: ")
                    self.add_error(target, message)

    def error_lines(self) -> list[tuple[int, str, str]]:
        """The first ``SHOWN_ERRORS`` bad lines as (number, text, error), each cut to a readable
        length: the answer to a 20 KB paste stays small whatever it holds."""
        shown = []
        for number, text, error in self.numbered_lines():
            if error:
                shown.append((number, text[:LINE_SHOWN], error[:LINE_SHOWN]))
                if len(shown) == SHOWN_ERRORS:
                    break
        return shown

    def numbered_lines(self) -> list[tuple[int, str, str | None]]:
        """The rule text as (line number, text, error or None), for the editor's margin."""
        text = self.data.get(self.add_prefix("rules_text"), "") if self.is_bound else ""
        if not self.is_bound:
            text = self.initial.get("rules_text", "")
        return [
            (number, line, self.line_errors.get(number))
            for number, line in enumerate(str(text).splitlines(), start=1)
        ]


class AddressTestForm(forms.Form):
    address = forms.CharField(label="Address to test", required=False, max_length=100, strip=True)


def _duration_text(value: Any) -> str:
    if value is None:
        return ""
    if not value:
        return "0"
    try:
        return to_text(value)
    except ValueError:
        return f"{int(value.total_seconds() // 60)}m"


class ScopePolicyForm(forms.Form):
    """The settings of one kind of token; its prefix is the scope."""

    allowed = forms.BooleanField(required=False, label="Allow these tokens")
    max_lifetime = forms.CharField(
        required=False,
        max_length=20,
        label="Maximum lifetime",
        help_text="Such as 90m, 12h or 90d; empty means unlimited.",
    )
    expiry_required = forms.BooleanField(required=False, label="Require an expiry")
    enforced_ip_filter = forms.ModelChoiceField(
        queryset=IpFilter.objects.none(),
        required=False,
        label="Enforced IP filter",
        empty_label="None",
        help_text="Every token of this kind uses it.",
    )
    custom_ip_allowed = forms.BooleanField(
        required=False, label="Tokens may carry their own IP filter or addresses"
    )
    permission_edits_allowed = forms.BooleanField(
        required=False, label="Permissions of existing tokens may be edited"
    )
    regeneration_allowed = forms.BooleanField(required=False, label="Tokens may be regenerated")
    max_grace = forms.CharField(
        required=False,
        max_length=20,
        label="Longest grace period",
        help_text="How long an old secret may keep working after regeneration: 0 to 7d.",
    )
    revoke_unused_days = forms.CharField(
        required=False,
        max_length=20,
        label="Revoke tokens unused for (days)",
        help_text="7 to 365 days; empty or 0 means off. Applied by the daily cleanup; a token "
        "never used counts from its creation.",
    )

    def __init__(self, data: Any = None, *, scope: str, filters: Any, **kwargs: Any) -> None:
        super().__init__(data, prefix=scope, **kwargs)
        self.scope = scope
        enforced = self.fields["enforced_ip_filter"]
        assert isinstance(enforced, forms.ModelChoiceField)
        enforced.queryset = filters

    @staticmethod
    def initial_for(scope_policy: ScopePolicy) -> dict[str, Any]:
        return {
            "allowed": scope_policy.allowed,
            "max_lifetime": _duration_text(scope_policy.max_lifetime),
            "expiry_required": scope_policy.expiry_required,
            "enforced_ip_filter": scope_policy.enforced_ip_filter_id,
            "custom_ip_allowed": scope_policy.custom_ip_allowed,
            "permission_edits_allowed": scope_policy.permission_edits_allowed,
            "regeneration_allowed": scope_policy.regeneration_allowed,
            "max_grace": _duration_text(scope_policy.max_grace),
            "revoke_unused_days": scope_policy.revoke_unused_days or "",
        }

    def changes(self) -> dict[str, Any]:
        """The settings as the policy services take them (durations stay text to parse)."""
        return dict(self.cleaned_data)
