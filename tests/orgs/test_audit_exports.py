"""Audit exports too large to stream: offered, prepared by the worker, kept for their asker."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from orgs import exports
from orgs.models import AuditEvent, AuditExport
from tests.factories import issue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_limit(settings, tmp_path):
    settings.KEYWARD_EXPORT_STREAM_LIMIT = 5
    settings.KEYWARD_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def many_events(org_admin):
    for number in range(8):
        issue(org_admin, name=f"token {number}")


def test_a_small_export_still_streams_with_its_end_marker(client, world, org_admin, settings):
    settings.KEYWARD_EXPORT_STREAM_LIMIT = 1000
    issue(org_admin, name="one")
    client.force_login(world.alice)
    response = client.get("/o/acme/audit/export.csv")
    content = b"".join(response.streaming_content).decode()
    assert content.rstrip().endswith("events")
    assert content.splitlines()[-1].startswith("# end of export:")


def test_a_large_export_is_offered_then_prepared_then_downloaded(client, world, many_events):
    client.force_login(world.alice)
    offer = client.get("/o/acme/audit/export.csv?action=token.created")
    assert offer.status_code == 200 and "Prepare the export" in offer.content.decode()
    response = client.post("/o/acme/audit/exports/", {"query": "action=token.created"})
    assert response.status_code == 302
    export = AuditExport.objects.get()
    assert export.status == "pending" and export.requested_by == world.alice
    page = client.get("/o/acme/audit/exports/").content.decode()
    assert "Waiting" in page and "Download CSV" not in page

    call_command("deliver_webhooks", "--once", stdout=io.StringIO())

    export.refresh_from_db()
    created = AuditEvent.objects.filter(organization=world.acme, action="token.created").count()
    assert export.status == "ready" and export.row_count == created
    page = client.get("/o/acme/audit/exports/").content.decode()
    assert "Download CSV" in page
    download = client.get(f"/o/acme/audit/exports/{export.pk}/download/")
    content = b"".join(download.streaming_content).decode()
    lines = content.splitlines()
    assert lines[-1] == f"# end of export: {created} events"
    assert all("token.created" in line for line in lines[1:-1])


def test_an_export_is_its_askers_alone(client, world, many_events, org_admin):
    export = exports.request_export(actor=org_admin, organization=world.acme, query="")
    exports.build_due()
    client.force_login(world.bob)  # a group admin: reads part of the log, not this export
    assert client.get(f"/o/acme/audit/exports/{export.pk}/download/").status_code == 404
    client.force_login(world.dave)  # another organization
    assert client.get(f"/o/acme/audit/exports/{export.pk}/download/").status_code == 404


def test_an_asker_who_lost_the_right_gets_a_failed_export_not_the_file(
    world, org_admin, many_events
):
    from people.services import set_member
    from tests.factories import OPERATOR

    export = exports.request_export(actor=org_admin, organization=world.acme, query="")
    set_member(actor=OPERATOR, organization=world.acme, user=world.bob, role="admin")
    set_member(actor=OPERATOR, organization=world.acme, user=world.alice, role="member")
    exports.build_due()
    export.refresh_from_db()
    assert export.status == "failed" and not export.file_name


def test_a_worker_killed_while_building_leaves_the_export_to_the_next(
    world, org_admin, many_events
):
    export = exports.request_export(actor=org_admin, organization=world.acme, query="")
    assert exports._claim(timezone.now()).pk == export.pk  # a worker took it, then died
    assert exports.build_due().exports == 0  # its claim holds
    later = timezone.now() + exports.CLAIM + timedelta(seconds=1)
    assert exports.build_due(now=later).exports == 1
    export.refresh_from_db()
    assert export.status == "ready"


def test_exports_and_their_files_go_after_seven_days(world, org_admin, many_events):
    export = exports.request_export(actor=org_admin, organization=world.acme, query="")
    exports.build_due()
    export.refresh_from_db()
    path = exports.path_of(export)
    assert path.exists()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert exports.remove_expired() == 1
    assert not path.exists() and not AuditExport.objects.exists()
