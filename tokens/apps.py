from typing import Any

from django.apps import AppConfig


def _treat_disclosed_as_leaked(sender: Any, *, actor: Any, secrets: list[str], **_: Any) -> None:
    from tokens.services import treat_pasted_as_leaked

    treat_pasted_as_leaked(actor=actor, secrets=secrets)


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "API tokens"

    def ready(self) -> None:
        # orgs announces secrets a person disclosed to a console page; tokens treats them as
        # leaked (orgs.disclosed).
        from orgs.disclosed import secrets_disclosed

        secrets_disclosed.connect(
            _treat_disclosed_as_leaked, dispatch_uid="tokens: treat disclosed secrets as leaked"
        )
