"""Hypothesis against every form, through the page that receives it: whatever is typed or
crafted, the answer is a page (with errors beside the fields), never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.services import create_ip_filter
from tests.factories import issue

pytestmark = pytest.mark.django_db

NASTY = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "9" * 40,
        "1.5",
        "30d",
        "90m",
        "0d",
        "admin",
        "member",
        "custom",
        "organization",
        "api.api-tokens.read",
        "api.nope.read",
        "10.0.0.0/8",
        "10.0.0.1/8",
        "::1",
        "fe80::1%eth0",
        "all",
        "allow all",
        "deny 10.0.0.0/8\nallow all",
        "bogus rule",
        "\x00",
        "<script>alert(1)</script>",
        "2026-13-45",
        "2020-01-01",
        "9999-12-31",
        "%",
        "%s",
        "{{ request }}",
        "true",
        "on",
        "1h",
        "604800",
        "1d",
        "7d",
    ]
)
VALUE = st.one_of(NASTY, st.text(max_size=120))
SCOPES = ("organization", "group", "personal")
POLICY_FIELDS = (
    "allowed",
    "max_lifetime",
    "expiry_required",
    "enforced_ip_filter",
    "custom_ip_allowed",
    "permission_edits_allowed",
    "regeneration_allowed",
    "max_grace",
)


def form_data(fields):
    return st.fixed_dictionaries(
        {field: VALUE for field in fields},
        optional={
            "permissions": st.lists(VALUE, max_size=4),
        },
    )


FORMS = {
    # name: (method, url template, fields)
    "create token": (
        "post",
        "/o/acme/tokens/new/",
        (
            "name",
            "role",
            "expiry",
            "expiry_amount",
            "expiry_unit",
            "expiry_date",
            "ip_filter",
            "allowed_addresses",
        ),
    ),
    "create group token": (
        "post",
        "/o/acme/groups/platform/tokens/new/",
        (
            "name",
            "role",
            "expiry",
            "expiry_amount",
            "expiry_unit",
            "expiry_date",
            "allowed_addresses",
        ),
    ),
    "create personal token": (
        "post",
        "/o/acme/me/tokens/new/",
        ("name", "role", "expiry", "expiry_amount", "expiry_unit", "expiry_date"),
    ),
    "edit permissions": ("post", "/o/acme/tokens/{token}/permissions/", ("version", "role")),
    "regenerate": ("post", "/o/acme/tokens/{token}/regenerate/", ("version", "grace")),
    "revoke": ("post", "/o/acme/tokens/{token}/revoke/", ("version", "reason")),
    "delete": ("post", "/o/acme/tokens/{token}/delete/", ("version",)),
    "filter the list": ("get", "/o/acme/tokens/", ("q", "status", "page")),
    "create IP filter": ("post", "/o/acme/ip-filters/new/", ("name", "description", "rules_text")),
    "edit IP filter": (
        "post",
        "/o/acme/ip-filters/{filter}/edit/",
        ("name", "description", "rules_text", "expected_version"),
    ),
    "check rules": ("post", "/o/acme/ip-filters/check/", ("rules_text",)),
    "test an address": ("get", "/o/acme/ip-filters/{filter}/test/", ("address",)),
    "security policy": (
        "post",
        "/o/acme/policy/",
        ("expected_version", *(f"{scope}-{field}" for scope in SCOPES for field in POLICY_FIELDS)),
    ),
    "policy preview": (
        "post",
        "/o/acme/policy/preview/",
        tuple(f"{scope}-{field}" for scope in SCOPES for field in POLICY_FIELDS),
    ),
    "audit filters": (
        "get",
        "/o/acme/audit/",
        (
            "actor",
            "actor_kind",
            "token",
            "action",
            "object",
            "group",
            "since",
            "until",
            "before",
            "after",
            "count",
        ),
    ),
    "password change": ("post", "/password/", ("old_password", "new_password1", "new_password2")),
}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_no_input_to_any_form_gives_a_server_error(name, client, world, org_admin):
    method, url, fields = FORMS[name]
    token = issue(org_admin, scope="group", group=world.platform, role="member").token
    ip_filter = create_ip_filter(
        actor=org_admin, organization=world.acme, name="Office", rules_text="allow all"
    )
    url = url.format(token=token.pk, filter=ip_filter.pk)
    client.force_login(world.alice)

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=form_data(fields), htmx=st.booleans())
    def submit(data, htmx):
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        clean = {
            key: value.replace("\x00", "") if method == "get" else value
            for key, value in data.items()
            if isinstance(value, str)
        }
        if "permissions" in data:
            clean["permissions"] = data["permissions"]
        response = getattr(client, method)(url, clean, **headers)
        assert response.status_code < 500, (name, data, response.status_code)

    submit()


def test_the_audit_log_accepts_the_last_day_of_the_calendar(client, world):
    # Found by the fuzzer above: "until" + one day overflowed into a 500.
    client.force_login(world.alice)
    for path in ("/o/acme/audit/", "/o/acme/audit/export.csv"):
        assert client.get(path, {"since": "2020-01-01", "until": "9999-12-31"}).status_code == 200
