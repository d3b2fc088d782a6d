"""What every request gets whatever it sends: JSON errors in one shape, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import Api
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

GENERIC_401 = {"error": {"code": "unauthenticated", "message": "Invalid or missing API token."}}
WWW_AUTHENTICATE = 'Bearer realm="keyward", error="invalid_token"'


def assert_bad_request(response, message_part: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    assert error["code"] == "validation_error" and message_part in error["message"]


# Bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        '{"name": "x"',
        "\udcff".encode("utf-8", "surrogatepass"),
        b"\xff\xfe\x00",
        "[" * 5000 + "]" * 5000,
        '{"version": 1' + "0" * 5000 + "}",
    ],
    ids=["broken", "truncated", "surrogate", "not-utf8", "deeply-nested", "huge-number"],
)
def test_a_body_that_is_not_json_is_a_400(admin_api, raw):
    assert_bad_request(admin_api.post("/api-tokens", raw=raw), "not valid JSON")
    assert ApiToken.objects.count() == 7  # the callers' tokens only


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
def test_a_body_sent_with_another_content_type_is_a_400(admin_api, content_type):
    response = admin_api.post("/api-tokens", raw='{"name": "x"}', content_type=content_type)
    assert_bad_request(response, "Content-Type: application/json")


def test_a_body_over_64_kib_is_a_400(admin_api):
    response = admin_api.post("/api-tokens", raw='{"name": "' + "x" * (64 * 1024) + '"}')
    assert_bad_request(response, "over 64 KiB")


@pytest.mark.parametrize("raw", ["[]", '"a string"', "42", "null"])
def test_json_that_is_not_an_object_is_a_400(admin_api, raw):
    response = admin_api.post("/api-tokens", raw=raw)
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_wrong_types_are_named(admin_api):
    response = admin_api.post(
        "/api-tokens", {"name": 5, "permissions": "api.groups.read", "groupId": "x"}
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "permissions", "groupId"}


def test_an_action_without_a_body_uses_its_defaults(admin_api, callers):
    token = callers.tokens["member_role"]
    assert admin_api.post(f"/api-tokens/{token.pk}/revoke", raw="").status_code == 200


@pytest.mark.parametrize("path", ["/api-tokens/0", "/api-tokens/-1", "/api-tokens/" + "9" * 30])
def test_ids_out_of_range_are_a_400_not_a_500(admin_api, path):
    assert admin_api.get(path).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        {"offset": 2**70},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"action": "x\x00"},
    ],
)
def test_query_values_at_the_edges_are_a_400_not_a_500(admin_api, query):
    assert admin_api.get("/audit-events", **query).status_code == 400


# Authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer kwo_short",
        "Bearer kwo_" + "A" * 49,
        "Bearer " + "x" * 5000,
    ],
)
def test_every_bad_token_gets_the_same_401(client, world, header):
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == GENERIC_401
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def test_a_revoked_or_deleted_token_gets_the_same_401(admin_api, callers):
    member = callers.tokens["member_role"]
    admin_api.post(f"/api-tokens/{member.pk}/revoke")
    custom = callers.tokens["custom"]
    admin_api.delete(f"/api-tokens/{custom.pk}")
    for name in ("member_role", "custom"):
        response = callers.api(name).get("/me")
        assert response.status_code == 401 and response.json() == GENERIC_401


def test_a_token_used_from_a_disallowed_address_is_a_403(admin_api, client):
    secret = admin_api.post(
        "/api-tokens", {"name": "office", "role": "member", "allowedAddresses": ["10.0.0.0/8"]}
    ).json()["token"]
    response = Api(client, secret).get("/me")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "address_not_allowed"


def test_too_many_failures_from_one_address_are_a_429_with_retry_after(client, callers, settings):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 3
    for _ in range(3):
        assert Api(client, "kwo_wrong").get("/me").status_code == 401
    response = Api(client, "kwo_wrong").get("/me")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_requests"
    assert int(response["Retry-After"]) > 0
    # Another address is not slowed down.
    other = Api(client, callers.secrets["org_admin"]).request("GET", "/me", remote_addr="10.9.9.9")
    assert other.status_code == 200


def test_health_needs_no_token(client, db):
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_unknown_paths_and_methods_answer_in_the_api_error_shape(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = client.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]
