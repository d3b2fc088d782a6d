"""Console forms for people: they read and check input; the services enforce the rules."""

from __future__ import annotations

from typing import TypedDict

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from orgs.models import Role

ROLE_CHOICES = [(Role.MEMBER, "Member"), (Role.ADMIN, "Admin")]


class Addressee(TypedDict, total=False):
    """Whom ``people.services.invite`` invites: one of the two."""

    email: str
    username: str


class InviteForm(forms.Form):
    addressee = forms.CharField(
        label="E-mail address or username",
        max_length=254,
        help_text="An address with an @ and a dot after it is an e-mail address; anything else "
        "is a username.",
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.MEMBER)

    def clean_addressee(self) -> str:
        return self.cleaned_data["addressee"].strip()

    def addressee_fields(self) -> Addressee:
        """``{"email": ...}`` or ``{"username": ...}`` for the service."""
        addressee = self.cleaned_data["addressee"]
        try:
            validate_email(addressee)
        except ValidationError:
            return {"username": addressee}
        return {"email": addressee}


class CreatePersonForm(forms.Form):
    username = forms.CharField(max_length=150)
    display_name = forms.CharField(label="Name", max_length=150, required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.MEMBER)


class VersionForm(forms.Form):
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1)
