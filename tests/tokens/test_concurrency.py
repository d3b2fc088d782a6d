"""Concurrent changes on PostgreSQL: one winner per version, nothing lost, no duplicates."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from access.errors import VersionConflict
from orgs.models import User
from tests.factories import issue
from tokens.auth import AuthenticationFailed, authenticate
from tokens.models import ApiToken, TokenSecret
from tokens.services import create_token, regenerate_token, update_token_permissions

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks and real concurrency need PostgreSQL"
    ),
]


def run_at_once(count, work):
    """Run ``work(index)`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)

    def task(index):
        barrier.wait()
        try:
            return work(index)
        except Exception as error:
            return error
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


def test_twenty_simultaneous_regenerations_of_one_version_have_exactly_one_winner(org_admin):
    issued = issue(org_admin)
    token = issued.token
    results = run_at_once(
        20, lambda _: regenerate_token(actor=org_admin, token=token, expected_version=1)
    )
    winners = [result for result in results if not isinstance(result, Exception)]
    conflicts = [result for result in results if isinstance(result, VersionConflict)]
    assert len(winners) == 1 and len(conflicts) == 19
    assert ApiToken.objects.get(pk=token.pk).version == 2
    assert TokenSecret.objects.filter(token=token).count() == 1
    assert authenticate(f"Bearer {winners[0].secret}", "127.0.0.1")
    with pytest.raises(AuthenticationFailed):
        authenticate(f"Bearer {issued.secret}", "127.0.0.1")


def test_concurrent_permission_edits_never_lose_an_update(org_admin, permission_edits_allowed):
    token = issue(org_admin, role="custom", permissions=["api.api-tokens.read"]).token
    wanted = [
        "api.usage.read",
        "api.groups.read",
        "api.users.read",
        "api.audit-events.read",
        "api.ip-filters.read",
        "api.organizations.read",
    ]

    def add_one(index):
        # A client that reads, edits and retries on a conflict, as the console and API do.
        for _attempt in range(50):
            current = ApiToken.objects.get(pk=token.pk)
            try:
                return update_token_permissions(
                    actor=org_admin,
                    token=current,
                    role="custom",
                    permissions=[*current.permissions, wanted[index]],
                    expected_version=current.version,
                )
            except VersionConflict:
                continue
        raise AssertionError("never got through")

    results = run_at_once(len(wanted), add_one)
    assert not [result for result in results if isinstance(result, Exception)]
    final = ApiToken.objects.get(pk=token.pk)
    assert set(final.permissions) == {"api.api-tokens.read", *wanted}
    assert final.version == 1 + len(wanted)


def test_simultaneous_creations_with_one_name_give_one_token_and_clear_errors(world, org_admin):
    results = run_at_once(
        10,
        lambda _: create_token(
            actor=org_admin, organization=world.acme, name="Same name", role="member"
        ),
    )
    created = [result for result in results if not isinstance(result, Exception)]
    errors = [result for result in results if isinstance(result, ValidationError)]
    assert len(created) == 1 and len(errors) == 9
    assert all("already exists" in error.message_dict["name"][0] for error in errors)
    assert ApiToken.objects.filter(name="Same name").count() == 1
    # The losers' technical users were rolled back with them.
    assert User.objects.filter(kind="technical", display_name="Same name").count() == 1


def test_twenty_simultaneous_reports_of_one_token_revoke_it_once_with_one_leak_event(org_admin):
    from orgs.models import AuditEvent
    from tokens import leaks

    issued = issue(org_admin)
    url = "https://github.com/octo/app/blob/abc123/.env"
    outcomes = run_at_once(
        20,
        lambda index: leaks.process_report(
            leaks.LeakReport(token=issued.secret, url=url, source=f"scanner {index}"),
            reporter_address="198.51.100.7",
        ),
    )
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert outcomes.count(leaks.Outcome.REVOKED) == 1
    assert outcomes.count(leaks.Outcome.ALREADY_REPORTED) == 19
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.status == "revoked" and token.version == 2
    assert AuditEvent.objects.filter(action="token.leaked", object_id=str(token.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="token.revoked", object_id=str(token.pk)).exists()


def test_a_leak_report_during_a_regeneration_waits_for_it_instead_of_deadlocking(org_admin):
    """The finding: a report locked the secret and then the token, the token services lock the
    token and then its secrets; a report landing inside a regeneration deadlocked with it, and
    one of them failed with a database error. Here the regeneration is held open with the token
    locked, a report starts, then the regeneration changes the secret and commits."""
    import time

    from django.db import transaction

    from tokens import leaks

    issued = issue(org_admin)
    outcome = {}

    def report():
        try:
            outcome["value"] = leaks.process_report(
                leaks.LeakReport(token=issued.secret, url="https://example.com/x"),
                reporter_address=None,
            )
        except Exception as error:
            outcome["value"] = error
        finally:
            connections.close_all()

    with transaction.atomic():
        ApiToken.objects.select_for_update().get(pk=issued.token.pk)  # as a regeneration does
        reporter = threading.Thread(target=report)
        reporter.start()
        time.sleep(0.5)  # the report is now waiting on a lock
        TokenSecret.objects.filter(token=issued.token).update(digest="replaced-by-regeneration")
    reporter.join(timeout=30)
    assert not isinstance(outcome.get("value"), Exception), outcome
    assert outcome["value"] == leaks.Outcome.NO_MATCH  # the secret it named was gone by then
