"""Fill the benchmark database fast: organizations with many tokens, made in bulk.

Bulk rows skip the services on purpose: the benchmarks measure reading them, and the
services' own cost is measured by bench/creation.py.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

BATCH = 5000


def organization_with_tokens(slug: str, count: int, *, expired_days_ago: int | None = None):
    """Return an organization (with an admin) holding ``count`` bulk-made tokens, expired
    ``expired_days_ago`` days ago if given."""
    from orgs.models import Organization, Role, User
    from orgs.principals import Principal
    from people.services import create_organization, set_member
    from tokens import token_format
    from tokens.models import ApiToken, TokenSecret

    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        organization = create_organization(
            actor=Principal.operator(label="bench"), slug=slug, name=slug.title()
        )
    admin, _ = User.objects.get_or_create(username=f"{slug}-admin")
    set_member(
        actor=Principal.operator(label="bench"),
        organization=organization,
        user=admin,
        role=Role.ADMIN,
    )
    existing = ApiToken.objects.filter(organization=organization).count()
    now = timezone.now()
    from django.conf import settings

    pepper_id, pepper = settings.KEYWARD_TOKEN_PEPPERS[-1]
    run = secrets.token_hex(4)  # technical users outlive cleaned-up tokens: fresh names
    while existing < count:
        size = min(BATCH, count - existing)
        with transaction.atomic():
            users = User.objects.bulk_create(
                [
                    User(
                        username=f"token.{slug}.{run}.{existing + index}",
                        kind="technical",
                        display_name=f"bulk {existing + index}",
                        password="!",
                    )
                    for index in range(size)
                ]
            )
            tokens = ApiToken.objects.bulk_create(
                [
                    ApiToken(
                        organization=organization,
                        scope="organization",
                        name=f"bulk token {existing + index:07d}",
                        user=user,
                        role="member",
                        expires_at=now + timedelta(days=30 + index % 300)
                        if expired_days_ago is None
                        else now - timedelta(days=expired_days_ago),
                        partial_token="kwo_…bulk",
                        created_by_name="bench",
                        modified_by_name="bench",
                    )
                    for index, user in enumerate(users)
                ]
            )
            rows = []
            for token in tokens:
                secret = token_format.generate("organization")
                rows.append(
                    TokenSecret(
                        token=token,
                        digest=token_format.digest(secret, pepper),
                        pepper_id=pepper_id,
                        partial_token=token_format.partial(secret),
                    )
                )
            TokenSecret.objects.bulk_create(rows)
        existing += size
    from django.db import connection

    if connection.vendor == "postgresql":
        # Bulk loads leave the planner without statistics until autovacuum runs; a table
        # in production has them, so measure with them.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return organization
