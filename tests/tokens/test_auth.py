"""Bearer authentication through the full request cycle: GET /api/v1/me."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import authenticate as password_authenticate
from django.utils import timezone

from orgs.models import OrganizationMembership
from tests.factories import PASSWORD, issue
from tokens import token_format, usage
from tokens.models import ApiToken, TokenSecret, TokenUsage
from tokens.services import delete_token, regenerate_token, revoke_token

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def me(client, secret, address="127.0.0.1", **headers):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address, **headers)


def assert_generic_401(response):
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "unauthenticated", "message": "Invalid or missing API token."}
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="keyward", error="invalid_token"'


def test_a_valid_organization_token_gets_its_principal(client, world, org_admin):
    issued = issue(org_admin, name="Reporter", role="member")
    body = me(client, issued.secret).json()
    assert body["kind"] == "technical" and body["scope"] == "organization"
    assert body["userId"] == issued.token.user_id and body["tokenId"] == issued.token.pk
    assert body["organization"] == {"id": world.acme.pk, "slug": "acme", "name": "Acme Corp"}
    assert body["group"] is None
    assert "api.api-tokens.read" in body["permissions"]
    assert "api.api-tokens.write" not in body["permissions"]


def test_a_group_token_names_its_group(client, world, org_admin):
    issued = issue(org_admin, scope="group", group=world.platform, role="admin")
    body = me(client, issued.secret).json()
    assert body["group"] == {"id": world.platform.pk, "slug": "platform", "name": "Platform"}
    assert "api.organizations.write" not in body["permissions"]


def test_a_personal_token_acts_as_its_owner(client, world, member):
    issued = issue(member, scope="personal", role="member")
    body = me(client, issued.secret).json()
    assert body["userId"] == world.carol.pk and body["kind"] == "human"


def test_the_authenticated_path_is_exactly_one_query(client, org_admin, django_assert_num_queries):
    issued = issue(org_admin)
    assert me(client, issued.secret).status_code == 200  # first use of the minute writes
    with django_assert_num_queries(1):
        assert me(client, issued.secret).status_code == 200


def test_a_personal_token_of_a_member_also_authenticates_in_one_query(
    client, member, django_assert_num_queries
):
    issued = issue(member, scope="personal", role="admin")
    me(client, issued.secret)
    with django_assert_num_queries(1):
        body = me(client, issued.secret).json()
    assert "api.api-tokens.read" in body["permissions"]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic abc", "Token kwo_abc", "Bearer kwo_short", "Bearer 🙂" * 3],
)
def test_missing_or_malformed_headers_get_the_generic_401(client, db, header):
    response = client.get(ME, HTTP_AUTHORIZATION=header) if header else client.get(ME)
    assert_generic_401(response)


def test_a_bad_checksum_is_refused_without_touching_the_database(
    client, org_admin, django_assert_num_queries
):
    issued = issue(org_admin)
    flipped = issued.secret[:10] + ("A" if issued.secret[10] != "A" else "B") + issued.secret[11:]
    with django_assert_num_queries(0):
        assert_generic_401(me(client, flipped))


def test_an_unknown_well_formed_token_gets_the_generic_401(client, db):
    assert_generic_401(me(client, token_format.generate("organization")))


def test_a_revoked_token_fails_at_once(client, org_admin):
    issued = issue(org_admin)
    assert me(client, issued.secret).status_code == 200
    revoke_token(actor=org_admin, token=issued.token)
    assert_generic_401(me(client, issued.secret))


def test_a_deleted_token_fails_at_once(client, org_admin):
    issued = issue(org_admin)
    delete_token(actor=org_admin, token=issued.token)
    assert_generic_401(me(client, issued.secret))


def test_an_expired_token_fails_the_moment_it_expires(client, org_admin):
    issued = issue(org_admin, expires_in=timedelta(hours=1))
    with time_machine.travel(issued.token.expires_at - timedelta(seconds=1), tick=False):
        assert me(client, issued.secret).status_code == 200
    with time_machine.travel(issued.token.expires_at, tick=False):
        assert_generic_401(me(client, issued.secret))


def test_a_regenerated_token_fails_once_its_grace_period_is_over(client, org_admin):
    issued = issue(org_admin)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        renewed = regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(days=1))
        assert me(client, issued.secret).status_code == 200
        traveller.shift(timedelta(days=1))
        assert_generic_401(me(client, issued.secret))
        assert me(client, renewed.secret).status_code == 200


def test_a_personal_token_stops_when_its_owner_leaves_the_organization(client, world, member):
    issued = issue(member, scope="personal", role="member")
    OrganizationMembership.objects.filter(user=world.carol).delete()
    assert_generic_401(me(client, issued.secret))


def test_an_address_outside_the_allow_list_gets_403_and_inside_gets_200(client, org_admin):
    issued = issue(org_admin, allowed_addresses=("10.1.0.0/16", "2001:db8::/32"))
    assert me(client, issued.secret, address="10.1.2.3").status_code == 200
    assert me(client, issued.secret, address="2001:db8::1").status_code == 200
    response = me(client, issued.secret, address="10.2.0.1")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "address_not_allowed"


def test_a_forged_forwarded_header_does_not_get_past_the_allow_list(client, org_admin):
    issued = issue(org_admin, allowed_addresses=("10.1.0.0/16",))
    response = me(client, issued.secret, address="192.0.2.7", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert response.status_code == 403


def test_a_trusted_proxy_passes_on_the_client_address(client, org_admin, settings):
    settings.KEYWARD_TRUSTED_PROXIES = ["192.0.2.0/24"]
    issued = issue(org_admin, allowed_addresses=("10.1.0.0/16",))
    response = me(client, issued.secret, address="192.0.2.7", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert response.status_code == 200


def test_a_flood_of_bad_tokens_from_one_address_is_throttled_but_others_work(
    client, org_admin, settings
):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 20
    issued = issue(org_admin)
    for _ in range(20):
        assert (
            me(client, token_format.generate("organization"), address="203.0.113.9").status_code
            == 401
        )
    response = me(client, token_format.generate("organization"), address="203.0.113.9")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_requests"
    assert 0 < int(response["Retry-After"]) <= settings.KEYWARD_AUTH_FAILURE_WINDOW_SECONDS
    assert me(client, issued.secret, address="198.51.100.1").status_code == 200


def test_a_hundred_garbage_tokens_do_not_lock_valid_tokens_of_the_same_address_out(
    client, org_admin, settings
):
    """The finding: one misconfigured script behind an office NAT sent 100 bad tokens, and
    every client of that address lost its API access for ten minutes."""
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 100
    office = "203.0.113.50"
    colleague = issue(org_admin, name="colleague's CI").secret
    for _ in range(100):
        assert me(client, "Bearer-less garbage", address=office).status_code == 401
    assert me(client, token_format.generate("organization"), address=office).status_code == 429
    assert me(client, "more garbage", address=office).status_code == 429
    response = me(client, colleague, address=office)
    assert response.status_code == 200
    assert response.json()["name"] == "colleague's CI"


def test_a_throttled_address_gets_429_for_revoked_tokens_and_bad_checksums_without_a_query(
    client, org_admin, settings, django_assert_num_queries
):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 3
    revoked = issue(org_admin, name="old")
    revoke_token(actor=org_admin, token=revoked.token)
    for _ in range(3):
        assert me(client, revoked.secret, address="192.0.2.99").status_code == 401
    assert me(client, revoked.secret, address="192.0.2.99").status_code == 429
    token = token_format.generate("organization")
    broken = token[:-1] + ("a" if token[-1] != "a" else "b")
    with django_assert_num_queries(0):
        response = me(client, broken, address="192.0.2.99")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_retry_after_counts_down_to_the_end_of_the_window(client, settings):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 2
    settings.KEYWARD_AUTH_FAILURE_WINDOW_SECONDS = 600
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(2):
            me(client, "garbage", address="192.0.2.98")
        assert me(client, "garbage", address="192.0.2.98")["Retry-After"] == "600"
        traveller.shift(timedelta(seconds=240))
        assert me(client, "garbage", address="192.0.2.98")["Retry-After"] == "360"


def test_a_cache_that_raises_leaves_the_throttle_to_this_process_with_one_warning(
    client, org_admin, settings, caplog
):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 2
    valid = issue(org_admin).secret
    settings.CACHES = {
        "default": {"BACKEND": "tests.tokens.broken_cache.BrokenCache"},
    }
    with caplog.at_level("WARNING", logger="keyward.redis"):
        statuses = [me(client, "garbage", address="192.0.2.97").status_code for _ in range(5)]
        assert me(client, valid, address="192.0.2.97").status_code == 200
    assert statuses == [401, 401, 429, 429, 429]
    warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1


def test_last_use_is_written_at_most_once_a_minute_and_no_request_is_lost(client, org_admin):
    issued = issue(org_admin)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(5):
            assert me(client, issued.secret, address="10.9.9.9").status_code == 200
        token = ApiToken.objects.get(pk=issued.token.pk)
        assert token.last_used_at == start and token.last_used_address == "10.9.9.9"
        assert TokenUsage.objects.get(token=token).count == 1  # the rest is buffered
        traveller.shift(timedelta(seconds=30))
        me(client, issued.secret)
        assert ApiToken.objects.get(pk=token.pk).last_used_at == start
        traveller.shift(timedelta(seconds=31))
        me(client, issued.secret)
        assert ApiToken.objects.get(pk=token.pk).last_used_at == start + timedelta(seconds=61)
        assert TokenUsage.objects.get(token=token).count == 7
    secret = TokenSecret.objects.get(token=issued.token)
    assert secret.last_used_at == start + timedelta(seconds=61)


def test_buffered_uses_of_an_idle_token_are_flushed(client, org_admin):
    issued = issue(org_admin)
    me(client, issued.secret)
    me(client, issued.secret)
    assert usage.current().pending_count() == 1
    usage.current().flush()
    assert TokenUsage.objects.get(token=issued.token).count == 2


def test_technical_users_can_never_sign_in_with_a_password(org_admin):
    issued = issue(org_admin)
    user = issued.token.user
    user.set_password(PASSWORD)  # even if someone managed to set one
    user.save()
    assert password_authenticate(username=user.username, password=PASSWORD) is None


def test_technical_users_cannot_sign_in_to_the_console_or_admin(client, org_admin):
    user = issue(org_admin).token.user
    user.set_password(PASSWORD)
    user.save()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in client.session
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    assert "_auth_user_id" not in client.session
    client.force_login(user)  # a forged session for a technical user is not honoured
    assert client.get("/admin/").status_code == 302


def test_peppers_rotate_old_tokens_work_until_their_pepper_is_retired(client, org_admin, settings):
    old, new = ("old", b"o" * 40), ("new", b"n" * 40)
    settings.KEYWARD_TOKEN_PEPPERS = [old]
    before = issue(org_admin, name="Before the rotation")
    settings.KEYWARD_TOKEN_PEPPERS = [old, new]  # the last one is the newest
    after = issue(org_admin, name="After the rotation")
    assert TokenSecret.objects.get(token=after.token).pepper_id == "new"
    assert me(client, before.secret).status_code == 200
    assert me(client, after.secret).status_code == 200
    settings.KEYWARD_TOKEN_PEPPERS = [new]  # the old pepper retired
    assert_generic_401(me(client, before.secret))
    assert me(client, after.secret).status_code == 200


def test_a_row_is_not_matched_by_another_pepper_s_digest(client, org_admin, settings):
    """A stored digest made with one pepper never lets in a secret digested with another,
    even if the row's pepper id names a pepper still in use."""
    settings.KEYWARD_TOKEN_PEPPERS = [("one", b"1" * 40), ("two", b"2" * 40)]
    issued = issue(org_admin, name="Pepper two")
    TokenSecret.objects.filter(token=issued.token).update(pepper_id="one")
    assert_generic_401(me(client, issued.secret))


@pytest.mark.parametrize("kind", ["organization", "group", "personal"])
def test_the_caller_s_answer_is_what_the_schema_declares(client, world, org_admin, kind):
    """/me renders its answer without validating it on each call; this checks it against
    PrincipalOut (and the OpenAPI document built from it) for every kind of token."""
    from orgs.api import PrincipalOut

    if kind == "group":
        issued = issue(org_admin, scope="group", group=world.platform, role="member")
    elif kind == "personal":
        issued = issue(org_admin, scope="personal", role="member")
    else:
        issued = issue(org_admin, role="member")
    response = me(client, issued.secret)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    validated = PrincipalOut.model_validate(body)
    assert validated.model_dump(by_alias=True, mode="json") == body
    declared = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["PrincipalOut"]
    assert set(body) == set(declared["properties"])


def test_a_valid_token_is_served_without_asking_the_shared_throttle(
    client, org_admin, settings, caplog
):
    """The failure count only matters to tokens that fail: a valid token's request does not
    wait for the cache (Redis in production), so a cache that does not answer goes unnoticed
    by it."""
    valid = issue(org_admin).secret
    settings.CACHES = {"default": {"BACKEND": "tests.tokens.broken_cache.BrokenCache"}}
    with caplog.at_level("WARNING", logger="keyward.redis"):
        for _ in range(3):
            assert me(client, valid, address="192.0.2.96").status_code == 200
    assert not [r for r in caplog.records if "does not answer" in r.getMessage()]


def test_one_ipv6_subscriber_cannot_dodge_the_throttle_by_changing_its_address(
    client, org_admin, settings
):
    """An IPv6 client is given a whole /64 (2**64 addresses) and picks any of them per request:
    counting failures per address let it guess on from a fresh address each time. Failures
    count per /64, as one IPv4 address behind a NAT counts once; a valid token from that /64
    is still served, and another /64 is not affected."""
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 3
    valid = issue(org_admin).secret
    statuses = [
        me(
            client, token_format.generate("organization"), address=f"2001:db8:1:2::{n:x}"
        ).status_code
        for n in range(1, 7)
    ]
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert me(client, token_format.generate("organization"), address="2001:db8:1:2:ffff::9")[
        "Retry-After"
    ]
    assert me(client, valid, address="2001:db8:1:2::abcd").status_code == 200
    other = me(client, token_format.generate("organization"), address="2001:db8:1:3::1")
    assert_generic_401(other)
