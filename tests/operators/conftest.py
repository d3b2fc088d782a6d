"""Helpers for operator tests: many tokens fast (bulk_create, not through the services)."""

from __future__ import annotations

import secrets
from datetime import datetime

import pytest
from django.utils import timezone

from orgs.models import Group, Organization, User, UserKind
from tokens.models import ApiToken, TokenSecret


def bulk_tokens(
    organization: Organization,
    count: int,
    *,
    prefix: str = "bulk",
    group: Group | None = None,
    expires_at: datetime | None = None,
    status: str = "active",
    revoked_at: datetime | None = None,
    created_at: datetime | None = None,
    last_used_at: datetime | None = None,
    with_secrets: bool = True,
    batch_size: int = 2000,
) -> list[int]:
    """Create ``count`` tokens, each with its own technical user (and a secret); return ids."""
    run = secrets.token_hex(3)
    now = created_at or timezone.now()
    users = User.objects.bulk_create(
        [
            User(
                username=f"token.{organization.slug}.{prefix}-{run}-{index}",
                kind=UserKind.TECHNICAL,
                display_name=f"{prefix} {run} {index}",
                password="!",
            )
            for index in range(count)
        ],
        batch_size=batch_size,
    )
    if not all(user.pk for user in users):  # backends that return no ids
        users = list(
            User.objects.filter(username__startswith=f"token.{organization.slug}.{prefix}-{run}-")
        )
    tokens = ApiToken.objects.bulk_create(
        [
            ApiToken(
                organization=organization,
                group=group,
                scope="group" if group else "organization",
                name=user.display_name,
                user=user,
                role="member",
                expires_at=expires_at,
                status=status,
                revoked_at=revoked_at,
                partial_token=f"kwo_…{index % 10000:04d}",
                created_at=now,
                modified_at=now,
                last_used_at=last_used_at,
            )
            for index, user in enumerate(users)
        ],
        batch_size=batch_size,
    )
    if not all(token.pk for token in tokens):
        tokens = list(ApiToken.objects.filter(user__in=users))
    if with_secrets:
        TokenSecret.objects.bulk_create(
            [
                TokenSecret(
                    token=token,
                    digest=secrets.token_hex(32),
                    pepper_id="test",
                    partial_token=token.partial_token,
                )
                for token in tokens
            ],
            batch_size=batch_size,
        )
    return [token.pk for token in tokens]


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("operator", "operator@example.com", "operator-password")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client
