"""manage.py report_leaked_tokens: tokens on standard input, a count on standard output."""

import io

import pytest
from django.core.management import call_command

from orgs.models import AuditEvent
from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db


def run(monkeypatch, text, *args):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    out = io.StringIO()
    call_command("report_leaked_tokens", *args, stdout=out)
    return out.getvalue()


def test_it_reads_one_token_a_line_and_prints_how_many_matched(monkeypatch, org_admin):
    first, second = issue(org_admin), issue(org_admin)
    text = f"{first.secret}\n\n  {second.secret}  \nkwo_nothing\n"
    out = run(monkeypatch, text, "--source", "the CI log of deploy #812")
    assert out.startswith("Read 3 tokens; 2 matched: 2 revoked")
    assert first.secret not in out and second.secret not in out
    for issued in (first, second):
        token = ApiToken.objects.get(pk=issued.token.pk)
        assert token.status == "revoked"
        assert token.revoked_reason == "Leaked: the CI log of deploy #812"
    assert AuditEvent.objects.filter(action="token.leaked").count() == 2


def test_a_second_run_reports_them_as_already_reported(monkeypatch, org_admin):
    issued = issue(org_admin)
    run(monkeypatch, issued.secret)
    assert (
        "1 matched: 0 revoked, 0 old secrets ended, 0 already not working (leak recorded), "
        "1 already reported" in run(monkeypatch, issued.secret)
    )
