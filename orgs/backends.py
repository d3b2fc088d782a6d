from django.contrib.auth.backends import ModelBackend

from orgs.models import UserKind


class HumanUserBackend(ModelBackend):
    """Password sign-in for people only: technical users never sign in, anywhere."""

    def user_can_authenticate(self, user) -> bool:  # noqa: ANN001 (Django's signature)
        return getattr(
            user, "kind", UserKind.HUMAN
        ) == UserKind.HUMAN and super().user_can_authenticate(user)

    def get_user(self, user_id):  # noqa: ANN001, ANN201
        user = super().get_user(user_id)
        if user is not None and user.kind != UserKind.HUMAN:
            return None
        return user
