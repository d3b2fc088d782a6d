"""An error while a secret is being revealed never puts it in Django's error report."""

import logging

import pytest
from django.views.debug import ExceptionReporter

from tokens import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "failing",
    [
        "tokens.views.render",  # before anything is rendered
        "django.urls.reverse",  # mid-template ({% url %}), after the secret is written
        "tokens.views.trigger_client_event",  # after the response holds the secret
    ],
)
def test_a_failure_while_revealing_keeps_the_secret_out_of_the_error_report(
    client, world, monkeypatch, settings, caplog, failing
):
    settings.DEBUG = False
    issued = []
    create = services.create_token

    def remember(**arguments):
        result = create(**arguments)
        issued.append(result.secret)
        return result

    def broken(*arguments, **keywords):
        raise RuntimeError("the template store went away")

    monkeypatch.setattr(services, "create_token", remember)
    monkeypatch.setattr(failing, broken)
    client.raise_request_exception = False
    client.force_login(world.alice)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(
            "/o/acme/tokens/new/", {"name": "Doomed", "role": "member", "expiry": "30d"}
        )
    assert response.status_code == 500 and issued
    secret = issued[0]
    assert secret not in response.content.decode()
    record = next(record for record in caplog.records if record.exc_info)
    reporter = ExceptionReporter(record.request, *record.exc_info)
    assert secret not in reporter.get_traceback_text()
    assert secret not in reporter.get_traceback_html()
    assert secret[4:-6] not in reporter.get_traceback_text()
