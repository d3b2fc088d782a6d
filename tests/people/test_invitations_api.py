"""Invitations through the API: the organization's side and the invited person's side."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from orgs.models import OrganizationMembership
from people.models import Invitation
from tests.factories import Api, issue, make_user

pytestmark = pytest.mark.django_db

VOLATILE = ("id", "createdAt", "expiresAt", "email", "username")


def comparable(body):
    return {key: value for key, value in body.items() if key not in VOLATILE}


def test_adding_a_member_of_another_organization_only_invites_them(callers, world):
    """The finding: POST /members from globex's admin answered 201 with alice's e-mail and made
    her a member of globex; an unknown name answered "No such person"."""
    globex = callers.api("other_org")
    world.alice.email = "alice@acme.example"
    world.alice.save()
    known = globex.post("/members", {"username": "alice"})
    unknown = globex.post("/members", {"username": "nobody-by-this-name"})
    assert known.status_code == unknown.status_code == 201
    assert comparable(known.json()) == comparable(unknown.json())
    assert "alice@acme.example" not in known.content.decode()
    assert known.json()["status"] == "pending" and known.json()["username"] == "alice"
    assert not OrganizationMembership.objects.filter(
        organization=world.globex, user=world.alice
    ).exists()


def test_the_answer_is_the_same_for_an_address_anyone_has_and_one_nobody_has(admin_api):
    make_user("erin", email="erin@example.com")
    known = admin_api.post("/invitations", {"email": "erin@example.com", "role": "admin"})
    unknown = admin_api.post("/invitations", {"email": "nobody@example.org", "role": "admin"})
    assert known.status_code == unknown.status_code == 201
    assert comparable(known.json()) == comparable(unknown.json())
    assert known.json()["memberUserId"] is None


def test_the_organization_lists_its_invitations_by_status(admin_api, world):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        old = admin_api.post("/invitations", {"email": "old@example.com"}).json()
        traveller.shift(timedelta(days=8))
        kept = admin_api.post("/invitations", {"username": "someone"}).json()
        gone = admin_api.post("/invitations", {"email": "gone@example.com"}).json()
        assert admin_api.delete(f"/invitations/{gone['id']}", version=1).status_code == 204
        statuses = {
            status: [
                item["id"] for item in admin_api.get("/invitations", status=status).json()["items"]
            ]
            for status in ("pending", "expired", "withdrawn", "accepted")
        }
    assert statuses == {
        "pending": [kept["id"]],
        "expired": [old["id"]],
        "withdrawn": [gone["id"]],
        "accepted": [],
    }
    assert admin_api.get("/invitations").json()["count"] == 3


def test_withdrawing_twice_or_a_stale_version_is_refused(admin_api):
    made = admin_api.post("/invitations", {"email": "twice@example.com"}).json()
    assert admin_api.delete(f"/invitations/{made['id']}", version=2).status_code == 409
    assert admin_api.delete(f"/invitations/{made['id']}").status_code == 204
    again = admin_api.delete(f"/invitations/{made['id']}")
    assert (
        again.status_code == 400 and "withdrawn" in again.json()["error"]["fields"]["invitation"][0]
    )


def test_bad_input_names_the_field(admin_api):
    both = admin_api.post("/invitations", {"email": "a@example.com", "username": "a"})
    assert both.status_code == 400
    bad = admin_api.post("/invitations", {"email": "not an address"})
    assert bad.status_code == 400 and "email" in bad.json()["error"]["fields"]
    role = admin_api.post("/invitations", {"email": "a@example.com", "role": "owner"})
    assert role.status_code == 400 and "role" in role.json()["error"]["fields"]


def test_the_invited_person_accepts_with_a_personal_token(callers, world):
    """dave belongs to globex; acme invites him; his globex personal token answers."""
    made = callers.api("org_admin").post("/invitations", {"username": "dave"}).json()
    dave = Api(
        callers.client, issue(world.principal(world.dave, world.globex), scope="personal").secret
    )
    mine = dave.get("/me/invitations").json()
    assert [item["id"] for item in mine["items"]] == [made["id"]]
    assert mine["items"][0]["organization"]["slug"] == "acme"
    response = dave.post(f"/invitations/{made['id']}/accept", {})
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert OrganizationMembership.objects.filter(organization=world.acme, user=world.dave).exists()
    listed = callers.api("org_admin").get(f"/invitations/{made['id']}").json()
    assert listed["status"] == "accepted" and listed["memberUserId"] == world.dave.pk


def test_someone_else_cannot_answer_an_invitation(callers, world):
    made = callers.api("org_admin").post("/invitations", {"username": "dave"}).json()
    response = callers.api("personal_member").post(f"/invitations/{made['id']}/accept", {})
    assert response.status_code == 404
    assert Invitation.objects.get(pk=made["id"]).status == "pending"


def test_a_person_without_any_organization_answers_with_their_session(world, admin_api):
    newcomer = make_user("newcomer", email="new@example.com")
    made = admin_api.post("/invitations", {"email": "NEW@example.com"}).json()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(newcomer)
    refused = browser.post(f"/api/v1/invitations/{made['id']}/decline")
    assert refused.status_code == 403  # no CSRF token: a cross-site form cannot answer
    browser.get("/invitations/")
    token = browser.cookies["csrftoken"].value
    listed = browser.get("/api/v1/me/invitations").json()
    assert [item["id"] for item in listed["items"]] == [made["id"]]
    response = browser.post(f"/api/v1/invitations/{made['id']}/decline", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and response.json()["status"] == "declined"
    assert not OrganizationMembership.objects.filter(user=newcomer).exists()


def test_the_person_side_needs_a_person(client, callers):
    assert client.get("/api/v1/me/invitations").status_code == 401
    response = callers.api("org_admin").get("/me/invitations")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
