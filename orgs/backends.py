from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from orgs import throttle
from orgs.models import UserKind
from policies.addresses import client_address


class SignInThrottled(PermissionDenied):
    """Too many failed sign-ins for this account or from this address."""


class HumanUserBackend(ModelBackend):
    """Password sign-in for people only, throttled per account and per address.

    Technical users never sign in, anywhere.
    """

    def authenticate(  # noqa: ANN201 (Django's signature)
        self,
        request: HttpRequest | None,
        username=None,
        password=None,
        **kwargs,  # noqa: ANN001
    ):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        address = client_address(request) if request is not None else None
        if username is not None and throttle.is_blocked(username, address):
            # PermissionDenied stops Django trying other backends; the form explains it.
            raise SignInThrottled("Too many failed sign-ins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if username is not None:
            if user is None:
                throttle.record_failure(username, address)
            else:
                throttle.clear(username)
        return user

    def user_can_authenticate(self, user) -> bool:  # noqa: ANN001 (Django's signature)
        is_human = getattr(user, "kind", UserKind.HUMAN) == UserKind.HUMAN
        return is_human and super().user_can_authenticate(user)

    def get_user(self, user_id):  # noqa: ANN001, ANN201
        user = super().get_user(user_id)
        if user is not None and user.kind != UserKind.HUMAN:
            return None
        return user
