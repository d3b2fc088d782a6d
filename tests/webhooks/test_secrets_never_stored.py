"""A signing secret is stored only encrypted, and never reaches a log line, an audit event, a
delivery, a later page or Django's error report."""

import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.views.debug import ExceptionReporter

from tests.factories import issue
from tests.webhooks.receiver import Answer
from webhooks import services, worker

pytestmark = pytest.mark.django_db


def every_stored_value():
    for model in apps.get_models():
        for row in model._default_manager.all().values():
            yield model._meta.label, " ".join(str(value) for value in row.values())


def test_after_a_full_life_cycle_no_table_and_no_log_line_holds_a_signing_secret(
    client, world, org_admin, receiver, caplog
):
    caplog.set_level(logging.DEBUG)
    issued = services.create_endpoint(
        actor=org_admin, organization=world.acme, url=receiver.url(), events=["*"]
    )
    secrets = [issued.secret]
    secrets.append(services.rotate_secret(actor=org_admin, endpoint=issued.endpoint).secret)
    secrets.append(
        services.rotate_secret(
            actor=org_admin, endpoint=issued.endpoint, overlap=timedelta(0)
        ).secret
    )
    receiver.answer(Answer(500))
    issue(org_admin)
    test = services.send_test_event(actor=org_admin, endpoint=issued.endpoint)
    worker.deliver_due()
    test.refresh_from_db()
    services.redeliver(actor=org_admin, delivery=test)
    worker.deliver_due()
    services.update_endpoint(actor=org_admin, endpoint=issued.endpoint, events=["token.*"])
    client.force_login(world.alice)
    for path in ("/o/acme/webhooks/", f"/o/acme/webhooks/{issued.endpoint.pk}/"):
        page = client.get(path).content.decode()
        assert not any(secret in page for secret in secrets)
    other = services.create_endpoint(
        actor=org_admin, organization=world.acme, url=receiver.url("/b"), events=["*"]
    )
    secrets.append(other.secret)
    services.delete_endpoint(actor=org_admin, endpoint=other.endpoint)

    random_parts = [secret.removeprefix("whsec_").rstrip("=") for secret in secrets]
    for label, text in every_stored_value():
        for part in random_parts:
            assert part not in text, f"a signing secret is stored in {label}"
    for record in caplog.records:
        for part in random_parts:
            assert part not in record.getMessage()


@pytest.mark.parametrize(
    "failing",
    [
        "webhooks.views.render",  # while the page with the secret is rendered
        "webhooks.views.add_never_cache_headers",  # after the response holds the secret
    ],
)
def test_a_failure_while_revealing_keeps_the_secret_out_of_the_error_report(
    client, world, monkeypatch, settings, caplog, failing
):
    settings.DEBUG = False
    issued = []
    create = services.create_endpoint

    def remember(**arguments):
        result = create(**arguments)
        issued.append(result.secret)
        return result

    def broken(*arguments, **keywords):
        raise RuntimeError("the template store went away")

    monkeypatch.setattr(services, "create_endpoint", remember)
    monkeypatch.setattr(failing, broken)
    client.raise_request_exception = False
    client.force_login(world.alice)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(
            "/o/acme/webhooks/new/",
            {"url": "https://siem.example.com/", "events": ["*"], "active": "on"},
        )
    assert response.status_code == 500 and issued
    secret = issued[0]
    assert secret not in response.content.decode()
    record = next(record for record in caplog.records if record.exc_info)
    reporter = ExceptionReporter(record.request, *record.exc_info)
    for text in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert secret.removeprefix("whsec_")[:30] not in text
    # The frames that hold the secret show none of their variables.
    frames = {frame["function"]: dict(frame["vars"]) for frame in reporter.get_traceback_frames()}
    assert frames["endpoint_create"]["issued"] == "********************"
    if "_reveal" in frames:
        assert set(frames["_reveal"].values()) == {"********************"}
