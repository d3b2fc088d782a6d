"""POST /api/v1/leaked-tokens: the neutral answer, the shapes refused, the rate limit, and
verified reporters with GitHub's signature and answer format."""

import base64
import hashlib
import json
import logging

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orgs.models import AuditEvent
from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

ENDPOINT = "/api/v1/leaked-tokens"
URL = "https://github.com/octo/app/blob/abc123/.env"


def post(client, items, **headers):
    body = items if isinstance(items, (bytes, str)) else json.dumps(items)
    return client.post(ENDPOINT, body, content_type="application/json", headers=headers)


@pytest.fixture
def reporter_key(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.KEYWARD_LEAK_REPORTER_KEYS = {"github-key-1": pem}
    return key


def signed(key, body: bytes, key_id="github-key-1"):
    signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    return {"Github-Public-Key-Identifier": key_id, "Github-Public-Key-Signature": signature}


def test_a_report_needs_no_token_and_revokes_what_matches(client, org_admin):
    issued = issue(org_admin)
    response = post(client, [{"token": issued.secret, "type": "keyward", "url": URL}])
    assert response.status_code == 202 and response.json() == {"received": 1}
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.status == "revoked" and token.revoked_reason == f"Leaked: {URL}"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.secret}"})
    assert me.status_code == 401


def test_a_secret_repeated_in_one_report_is_processed_once(client, org_admin, monkeypatch):
    """Repeating a dead token's secret cannot multiply the work (and the time) a match costs."""
    from tokens import leaks

    issued = issue(org_admin)
    processed = []
    original = leaks.process_report
    monkeypatch.setattr(
        leaks, "process_report", lambda report, **kw: processed.append(1) or original(report, **kw)
    )
    response = post(client, [{"token": issued.secret, "url": URL}] * 100)
    assert response.status_code == 202 and response.json() == {"received": 100}
    assert len(processed) == 1
    assert AuditEvent.objects.filter(action="token.leaked").count() == 1


def test_the_answer_is_the_same_whether_anything_matched(client, org_admin):
    issued = issue(org_admin)
    made_up = "kwo_" + "A" * 43
    from tokens.token_format import checksum

    made_up += checksum(made_up)
    answers = [
        post(client, [{"token": text, "url": URL}, {"token": "garbage"}])
        for text in (made_up, issued.secret)
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].content == answers[1].content == b'{"received": 2}'
    assert set(answers[0].headers) == set(answers[1].headers)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        b'"kwo_x"',
        json.dumps([{"token": "x"}] * 101).encode(),
        json.dumps([{"url": URL}]).encode(),
        json.dumps([{"token": 5}]).encode(),
        json.dumps([{"token": "x", "url": ["a"]}]).encode(),
        json.dumps(["kwo_x"]).encode(),
        json.dumps([{"token": "x" * 5000}]).encode(),
    ],
)
def test_a_malformed_body_is_a_validation_error(client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_the_error_names_the_item_and_field(client):
    response = post(client, [{"token": "fine"}, {"token": 5, "source": 3}])
    assert response.json()["error"]["fields"] == {
        "1.token": ["Give the token as a string."],
        "1.source": ["Give a string, or leave it out."],
    }


def test_extra_keys_and_null_url_or_source_are_accepted(client, org_admin):
    issued = issue(org_admin)
    response = post(
        client, [{"token": issued.secret, "type": "x", "url": None, "source": None, "n": 1}]
    )
    assert response.status_code == 202
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_reason == "Leaked: reported"


def test_a_body_over_64_kib_is_refused(client):
    body = json.dumps([{"token": "x", "url": "u" * 70_000}]).encode()
    response = post(client, body)
    assert response.status_code == 400 and "64 KiB" in response.json()["error"]["message"]


def test_other_content_types_are_refused(client):
    response = client.post(ENDPOINT, "token=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_more_than_thirty_reports_a_minute_from_one_address_are_throttled(client, settings):
    answers = [post(client, [{"token": "x"}]).status_code for _ in range(31)]
    assert answers == [202] * 30 + [429]
    throttled = post(client, [{"token": "x"}])
    assert throttled.status_code == 429 and 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["error"]["code"] == "too_many_requests"
    other = client.post(ENDPOINT, "[]", content_type="application/json", REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 400  # another address is still heard


def test_nothing_secret_reaches_the_logs(client, org_admin, caplog):
    issued = issue(org_admin)
    with caplog.at_level(logging.DEBUG):
        post(client, [{"token": issued.secret, "url": URL}])
    assert issued.secret not in caplog.text


# Verified reporters -------------------------------------------------------------------------------


def test_a_verified_reporter_gets_a_label_per_token(client, org_admin, reporter_key):
    issued = issue(org_admin)
    items = [
        {"token": issued.secret, "type": "keyward_api_token", "url": URL, "source": "content"},
        {"token": "kwo_not_a_token", "type": "keyward_api_token"},
    ]
    body = json.dumps(items).encode()
    response = client.post(
        ENDPOINT, body, content_type="application/json", headers=signed(reporter_key, body)
    )
    assert response.status_code == 202
    assert response.json() == [
        {
            "token_hash": hashlib.sha256(issued.secret.encode()).hexdigest(),
            "token_type": "keyward_api_token",
            "label": "true_positive",
        },
        {
            "token_hash": hashlib.sha256(b"kwo_not_a_token").hexdigest(),
            "token_type": "keyward_api_token",
            "label": "false_positive",
        },
    ]
    assert issued.secret not in response.content.decode()
    assert ApiToken.objects.get(pk=issued.token.pk).status == "revoked"
    event = AuditEvent.objects.get(action="token.leaked")
    assert event.changes["leak"]["after"]["reported_by"] == "verified reporter github-key-1"


def test_a_report_already_acted_on_is_still_a_true_positive(client, org_admin, reporter_key):
    issued = issue(org_admin)
    body = json.dumps([{"token": issued.secret}]).encode()
    for _ in range(2):
        response = client.post(
            ENDPOINT, body, content_type="application/json", headers=signed(reporter_key, body)
        )
        assert response.json()[0]["label"] == "true_positive"


@pytest.mark.parametrize("tamper", ["body", "key_id", "signature", "missing_signature"])
def test_a_bad_signature_is_401_and_changes_nothing(client, org_admin, reporter_key, tamper):
    issued = issue(org_admin)
    body = json.dumps([{"token": issued.secret}]).encode()
    headers = signed(reporter_key, body)
    if tamper == "body":
        body = json.dumps([{"token": issued.secret, "url": URL}]).encode()
    elif tamper == "key_id":
        headers["Github-Public-Key-Identifier"] = "someone-else"
    elif tamper == "signature":
        headers["Github-Public-Key-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    else:
        del headers["Github-Public-Key-Signature"]
    response = client.post(ENDPOINT, body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert ApiToken.objects.get(pk=issued.token.pk).status == "active"


def test_a_signature_from_another_key_is_refused(client, org_admin, reporter_key):
    body = json.dumps([{"token": "x"}]).encode()
    other = ec.generate_private_key(ec.SECP256R1())
    response = client.post(
        ENDPOINT, body, content_type="application/json", headers=signed(other, body)
    )
    assert response.status_code == 401


def test_verified_reporters_are_not_held_to_the_anonymous_rate(client, reporter_key, settings):
    settings.KEYWARD_LEAK_REPORTS_PER_MINUTE = 2
    body = json.dumps([{"token": "x"}]).encode()
    answers = [
        client.post(
            ENDPOINT, body, content_type="application/json", headers=signed(reporter_key, body)
        ).status_code
        for _ in range(5)
    ]
    assert answers == [202] * 5


def test_restoring_a_leaked_token_through_the_api_is_409_token_leaked(client, org_admin):
    admin = issue(org_admin)
    leaked = issue(org_admin)
    post(client, [{"token": leaked.secret, "url": URL}])
    response = client.post(
        f"/api/v1/api-tokens/{leaked.token.pk}/restore",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {admin.secret}"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "token_leaked"
    shown = client.get(
        f"/api/v1/api-tokens/{leaked.token.pk}",
        headers={"Authorization": f"Bearer {admin.secret}"},
    ).json()
    assert shown["leakedAt"] is not None and shown["leakedWhere"] == URL
    deleted = client.delete(
        f"/api/v1/api-tokens/{leaked.token.pk}",
        headers={"Authorization": f"Bearer {admin.secret}"},
    )
    assert deleted.status_code == 204


def test_retry_after_counts_down_to_the_end_of_the_window():
    from tokens.leaks_api import report_limit

    for _ in range(30):
        assert report_limit.retry_after("192.0.2.50", now=1000.0) is None
    assert report_limit.retry_after("192.0.2.50", now=1000.0) == 60
    assert report_limit.retry_after("192.0.2.50", now=1042.5) == 18


def test_a_cache_that_fails_lets_reports_through(client, org_admin, monkeypatch):
    from django.core.cache import cache

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "add", broken)
    issued = issue(org_admin)
    response = post(client, [{"token": issued.secret}])
    assert response.status_code == 202
    assert ApiToken.objects.get(pk=issued.token.pk).status == "revoked"


@pytest.mark.parametrize("field", ["token", "url", "source"])
@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"])
def test_text_no_database_can_store_is_refused_naming_the_field(client, org_admin, field, bad):
    issued = issue(org_admin)
    item = {"token": issued.secret, "url": URL, "source": "content"}
    body = json.dumps([item]).replace(
        json.dumps(item[field]), json.dumps(item[field])[:-1] + bad + '"'
    )
    response = post(client, body.encode())
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [f"0.{field}"]
    assert ApiToken.objects.get(pk=issued.token.pk).status == "active"


def test_a_reporter_key_configured_badly_refuses_its_reports_never_a_500(client, settings):
    settings.KEYWARD_LEAK_REPORTER_KEYS = {"github-key-1": "not a PEM key"}
    body = json.dumps([{"token": "kwo_x"}]).encode()
    headers = {
        "Github-Public-Key-Identifier": "github-key-1",
        "Github-Public-Key-Signature": "bm90IGEgc2lnbmF0dXJl",
    }
    response = client.post(ENDPOINT, body, content_type="application/json", headers=headers)
    assert response.status_code == 401
