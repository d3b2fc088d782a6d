"""Who may see and change an organization's webhook endpoints, cell by cell, without HTTP.

Endpoints' deliveries carry the organization's audit events: reading them needs
``api.webhooks.read`` and organization-wide reach; changing and deleting, ``.write`` and
``.delete``. Outside that reach an endpoint does not exist (N).

    O done      F Forbidden      N NotFound
"""

from __future__ import annotations

import pytest

from access.errors import Forbidden, NotFound
from tests.access.test_rules_table import ROWS, principal_of
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

# principal -> outcome of: see the endpoint, create one, update it, delete it.
TABLE = {
    "org_admin_token": "OOOO",
    "org_member_token": "OFFF",  # within reach, but the member role holds no webhook permission
    "custom_token": "OFFF",
    "group_admin_token": "NFNN",
    "group_member_token": "NFNN",
    "personal_of_admin": "OOOO",
    "personal_of_member": "NFNN",
    "personal_writer_of_member": "NFNN",
    "other_org_token": "NONN",  # creating one in its own organization is fine
    "human_admin": "OOOO",
    "human_member": "NFNN",
    "human_group_admin": "NFNN",
}


def _endpoint(world) -> WebhookEndpoint:
    from orgs.principals import Principal

    operator = Principal.operator(organization=world.acme, label="tests")
    return services.create_endpoint(
        actor=operator,
        organization=world.acme,
        url="https://siem.example.com/in",
        events=["*"],
    ).endpoint


def _outcome(call) -> str:
    try:
        call()
    except Forbidden:
        return "F"
    except NotFound:
        return "N"
    return "O"


def _see(actor, endpoint):
    if not WebhookEndpoint.objects.visible_to(actor).filter(pk=endpoint.pk).exists():
        raise NotFound("invisible")


@pytest.mark.parametrize("row", list(TABLE))
def test_each_principal_may_do_exactly_what_the_table_says_to_webhooks(world, row, dns):
    actor = principal_of(world, ROWS[row][0])
    organization = actor.organization
    got = "".join(
        [
            _outcome(lambda: _see(actor, _endpoint(world))),
            _outcome(
                lambda: services.create_endpoint(
                    actor=actor,
                    organization=organization,
                    url="https://siem.example.com/new",
                    events=["token.*"],
                )
            ),
            _outcome(
                lambda: services.update_endpoint(
                    actor=actor, endpoint=_endpoint(world), description="changed"
                )
            ),
            _outcome(lambda: services.delete_endpoint(actor=actor, endpoint=_endpoint(world))),
        ]
    )
    assert got == TABLE[row], f"{row}: see, create, update, delete"
