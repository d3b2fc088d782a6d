from django.contrib.auth.backends import ModelBackend

from orgs.models import UserKind


class HumanUserBackend(ModelBackend):
    """Password sign-in for people only. Technical users never sign in, anywhere.

    Lockouts come before it: ``orgs.lockout.LockoutBackend`` (django-axes) refuses a locked
    account and address pair, or a locked address, before any password is checked.
    """

    def user_can_authenticate(self, user) -> bool:
        is_human = getattr(user, "kind", UserKind.HUMAN) == UserKind.HUMAN
        return is_human and super().user_can_authenticate(user)

    def get_user(self, user_id):
        user = super().get_user(user_id)
        if user is not None and user.kind != UserKind.HUMAN:
            return None
        return user
