"""API: who am I."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from config.api_support import CamelSchema, principal_of

router = Router(tags=["principal"])


class OrganizationRef(CamelSchema):
    id: int
    slug: str
    name: str


class GroupRef(CamelSchema):
    id: int
    slug: str
    name: str


class PrincipalOut(CamelSchema):
    user_id: int
    kind: str
    name: str
    token_id: int
    scope: str
    organization: OrganizationRef
    group: GroupRef | None
    permissions: list[str]


@router.get("/me", response=PrincipalOut, by_alias=True, summary="The caller")
def me(request: HttpRequest) -> PrincipalOut:
    """The user the token acts as, its organization and group, and its effective permissions."""
    principal = principal_of(request)
    token = principal.token
    return PrincipalOut(
        user_id=principal.user.pk,
        kind=principal.user.kind,
        name=principal.user.name,
        token_id=token.pk,
        scope=token.scope,
        organization=OrganizationRef(
            id=token.organization.pk, slug=token.organization.slug, name=token.organization.name
        ),
        group=GroupRef(id=token.group.pk, slug=token.group.slug, name=token.group.name)
        if token.group_id
        else None,
        permissions=sorted(principal.permissions),
    )
