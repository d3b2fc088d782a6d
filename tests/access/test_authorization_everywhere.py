"""Who gets what, everywhere: every console URL for every kind of person, and every API
operation for tokens that must be refused (anonymous, revoked, expired, wrong address).

Both tables fail when a URL or an operation has no entry, so nothing new ships unlisted.
The API's table for valid callers is tests/access/test_authorization_matrix_api.py.
"""

from datetime import timedelta

import pytest
import time_machine
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from orgs import exports
from orgs.models import Role
from people.services import invite, set_group_member
from policies.services import create_ip_filter
from tests.access.test_authorization_matrix_api import MATRIX, Cell, registered_operations
from tests.factories import OPERATOR, add_member, issue, make_user
from tokens.services import revoke_token
from webhooks.services import create_endpoint

pytestmark = pytest.mark.django_db

PEOPLE = ("anonymous", "org_admin", "member", "group_admin", "other_group_admin", "other_org")
# name: statuses of a GET, in PEOPLE order. 302 for anonymous is the way to sign-in.
CONSOLE = {
    "home": (302, 302, 302, 302, 302, 302),
    "login": (200, 302, 302, 302, 302, 302),  # signed-in people are sent on
    "logout": (405, 405, 405, 405, 405, 405),
    "password-change": (302, 200, 200, 200, 200, 200),
    "tokens:organization-home": (302, 302, 302, 302, 302, 404),
    "tokens:list": (302, 200, 403, 403, 403, 404),
    "tokens:create": (302, 200, 403, 403, 403, 404),
    "tokens:inactive": (302, 200, 403, 403, 403, 404),
    "tokens:detail": (302, 200, 404, 200, 404, 404),
    "tokens:rename": (302, 200, 404, 200, 404, 404),
    "tokens:edit-permissions": (302, 200, 404, 200, 404, 404),
    "tokens:permission-preview": (302, 200, 404, 200, 404, 404),
    "tokens:regenerate": (302, 200, 404, 200, 404, 404),
    "tokens:addresses": (302, 200, 404, 200, 404, 404),
    "tokens:revoke": (302, 200, 404, 200, 404, 404),
    "tokens:restore": (302, 200, 404, 200, 404, 404),
    "tokens:delete": (302, 200, 404, 200, 404, 404),
    "tokens:group-list": (302, 200, 200, 200, 200, 404),
    "tokens:group-detail": (302, 200, 403, 200, 404, 404),
    "tokens:group-create": (302, 200, 403, 200, 404, 404),
    "tokens:group-inactive": (302, 200, 403, 200, 404, 404),
    "tokens:personal-list": (302, 200, 200, 200, 200, 404),
    "tokens:personal-create": (302, 200, 200, 200, 200, 404),
    "tokens:personal-inactive": (302, 200, 200, 200, 200, 404),
    "policies:ip-filter-list": (302, 200, 200, 200, 200, 404),
    "policies:ip-filter-create": (302, 200, 403, 403, 403, 404),
    "policies:ip-filter-check": (405, 405, 405, 405, 405, 405),  # POST only, for any slug
    "policies:ip-filter-detail": (302, 200, 200, 200, 200, 404),
    "policies:ip-filter-edit": (302, 200, 403, 403, 403, 404),
    "policies:ip-filter-delete": (302, 200, 403, 403, 403, 404),
    "policies:ip-filter-test": (302, 200, 200, 200, 200, 404),
    "policies:policy": (302, 200, 200, 200, 200, 404),  # read by all, changed by admins
    "policies:policy-preview": (405, 405, 405, 405, 405, 405),
    "audit:log": (302, 200, 403, 200, 200, 404),
    "audit:export": (302, 200, 403, 200, 200, 404),
    "audit:exports": (302, 200, 403, 200, 200, 404),
    # An export prepared for the organization admin is theirs alone.
    "audit:export-download": (302, 200, 403, 404, 404, 404),
    # Webhooks carry the organization's audit events: its admins only.
    "webhooks:list": (302, 200, 403, 403, 403, 404),
    "webhooks:create": (302, 200, 403, 403, 403, 404),
    "webhooks:detail": (302, 200, 403, 403, 403, 404),
    "webhooks:edit": (302, 200, 403, 403, 403, 404),
    "webhooks:delete": (302, 200, 403, 403, 403, 404),
    "webhooks:rotate": (302, 200, 403, 403, 403, 404),
    "webhooks:test": (405, 405, 405, 405, 405, 405),  # POST only
    "webhooks:delivery-detail": (302, 200, 403, 403, 403, 404),
    "webhooks:redeliver": (405, 405, 405, 405, 405, 405),
    # Invitations: the person's own, and the organization's People page.
    "my-invitations": (302, 200, 200, 200, 200, 200),
    "report-leak": (302, 200, 200, 200, 200, 200),
    "invitation-accept": (302, 405, 405, 405, 405, 405),  # POST only
    "invitation-decline": (302, 405, 405, 405, 405, 405),
    "members:people": (302, 200, 403, 403, 403, 404),
    "members:invite": (302, 405, 405, 405, 405, 404),
    "members:withdraw": (302, 405, 405, 405, 405, 404),
    "members:create-person": (302, 405, 405, 405, 405, 404),
}


def console_url_names():
    names = set()

    def walk(resolver, namespace=None):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern).startswith(("admin/", "api/")):
                    continue
                walk(pattern, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver())
    return names


def test_every_console_url_has_a_row():
    assert console_url_names() - set(CONSOLE) == set(), "console URLs without a row"
    assert set(CONSOLE) - console_url_names() == set(), "rows for URLs that do not exist"


@pytest.fixture(autouse=True)
def _export_directory(settings, tmp_path):
    settings.KEYWARD_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def people(world):
    erin = make_user("erin")
    add_member(world.acme, erin)
    set_group_member(actor=OPERATOR, group=world.data, user=erin, role=Role.ADMIN)
    return {
        "anonymous": None,
        "org_admin": world.alice,
        "member": world.carol,
        "group_admin": world.bob,
        "other_group_admin": erin,
        "other_org": world.dave,
    }


@pytest.mark.parametrize("name", sorted(CONSOLE))
def test_each_person_gets_the_status_in_the_table(name, world, people, org_admin, client):
    token = issue(org_admin, scope="group", group=world.platform, role="member").token
    if name == "tokens:restore":
        revoke_token(actor=org_admin, token=token)
    ip_filter = create_ip_filter(
        actor=org_admin, organization=world.acme, name="Office", rules_text="allow all"
    )
    endpoint = create_endpoint(
        actor=org_admin, organization=world.acme, url="https://siem.example.com/", events=["*"]
    ).endpoint
    invitation = invite(actor=org_admin, organization=world.acme, email="someone@example.com")
    export = exports.request_export(actor=org_admin, organization=world.acme, query="")
    exports.build_due()
    kwargs = {
        "export_id": export.pk,
        "invitation_id": invitation.pk,
        "org_slug": "acme",
        "token_id": token.pk,
        "group_slug": "platform",
        "filter_id": ip_filter.pk,
        "endpoint_id": endpoint.pk,
        "delivery_id": endpoint.deliveries.first().pk,
    }
    pattern_kwargs = _kwargs_for(name)
    url = reverse(name, kwargs={key: kwargs[key] for key in pattern_kwargs})
    got = {}
    for person in PEOPLE:
        client.logout()
        if people[person] is not None:
            client.force_login(people[person])
        got[person] = client.get(url).status_code
    assert got == dict(zip(PEOPLE, CONSOLE[name], strict=True)), url


def _kwargs_for(name):
    """The URL keyword arguments a named console pattern takes, its includes' included."""
    found = {}

    def walk(resolver, namespace=None, names=()):
        for pattern in resolver.url_patterns:
            here = (*names, *pattern.pattern.converters)
            if isinstance(pattern, URLResolver):
                walk(pattern, pattern.namespace or namespace, here)
            elif pattern.name:
                found[f"{namespace}:{pattern.name}" if namespace else pattern.name] = here

    walk(get_resolver())
    return found[name]


# API: callers that must be refused everywhere --------------------------------------------

REFUSED = {"anonymous": 401, "revoked": 401, "expired": 401, "wrong_address": 403}


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
def test_refused_tokens_get_401_or_403_on_every_operation(operation, world, org_admin, client):
    assert set(MATRIX) == registered_operations()
    method, path = operation
    revoked = issue(org_admin, name="revoked", role="admin")
    revoke_token(actor=org_admin, token=revoked.token)
    expired = issue(org_admin, name="expired", role="admin", expires_in=timedelta(hours=1))
    fenced = issue(org_admin, name="fenced", role="admin", allowed_addresses=("10.0.0.0/8",))
    secrets = {
        "anonymous": None,
        "revoked": revoked.secret,
        "expired": expired.secret,
        "wrong_address": fenced.secret,
    }
    call = MATRIX[operation].build(Cell(world, "org_admin"))
    url = f"/api/v1{call.path}"
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        for caller, expected in REFUSED.items():
            headers = {"REMOTE_ADDR": "192.0.2.1"}
            if secrets[caller]:
                headers["HTTP_AUTHORIZATION"] = f"Bearer {secrets[caller]}"
            response = client.generic(
                method, url, data=b"{}", content_type="application/json", **headers
            )
            if path == "/health":
                assert response.status_code == 200
            elif path == "/leaked-tokens":
                # Needs no token (holding the reported one is the proof); {} is not a list.
                assert response.status_code == 400, (caller, response.content)
            else:
                assert response.status_code == expected, (caller, url, response.content)
