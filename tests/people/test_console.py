"""The console's invitation pages: the organization's People page and the person's own."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from orgs.models import AuditEvent, OrganizationMembership, User
from people import services
from people.models import Invitation, InvitationStatus
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

PEOPLE = "/o/acme/people/"


@pytest.fixture
def erin(db):
    return make_user("erin", email="erin@example.com")


def test_an_admin_invites_from_the_people_page(client, world, erin):
    client.force_login(world.alice)
    response = client.post(f"{PEOPLE}invite/", {"addressee": "erin@example.com", "role": "admin"})
    assert response.status_code == 302
    page = client.get(PEOPLE).content.decode()
    assert "Invited erin@example.com as admin." in page
    assert "erin@example.com" in page and "Pending" in page and "Withdraw" in page
    invitation = Invitation.objects.get()
    assert invitation.email == "erin@example.com" and invitation.role == "admin"


def test_the_people_page_answers_the_same_for_a_known_and_an_unknown_username(client, world):
    client.force_login(world.alice)
    pages = []
    for username in ("dave", "no-such-person"):
        client.post(f"{PEOPLE}invite/", {"addressee": username, "role": "member"})
        pages.append(client.get(PEOPLE).content.decode())
    assert "Invited dave as member." in pages[0]
    assert "Invited no-such-person as member." in pages[1]


def test_bad_input_is_shown_beside_the_field(client, world):
    client.force_login(world.alice)
    client.post(f"{PEOPLE}invite/", {"addressee": "twice@example.com", "role": "member"})
    response = client.post(f"{PEOPLE}invite/", {"addressee": "twice@example.com", "role": "member"})
    assert response.status_code == 400
    assert "already has a pending invitation" in response.content.decode()
    response = client.post(f"{PEOPLE}invite/", {"addressee": "", "role": "owner"})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()


def test_an_admin_withdraws_an_invitation(client, world, org_admin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    client.force_login(world.alice)
    url = f"{PEOPLE}invitations/{invitation.pk}/withdraw/"
    response = client.post(url, {"version": 1}, follow=True)
    assert "Withdrew the invitation of erin." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.WITHDRAWN


def test_members_and_other_organizations_cannot_use_the_people_page(client, world, org_admin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    client.force_login(world.carol)
    assert client.get(PEOPLE).status_code == 403
    assert client.post(f"{PEOPLE}invite/", {"addressee": "x@example.com"}).status_code == 403
    client.force_login(world.dave)
    url = f"{PEOPLE}invitations/{invitation.pk}/withdraw/"
    assert client.post(url, {"version": 1}).status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_the_invited_person_sees_the_invitation_when_they_next_sign_in(
    client, world, org_admin, erin
):
    services.invite(actor=org_admin, organization=world.acme, email="erin@example.com")
    response = client.post("/login/", {"username": "erin", "password": PASSWORD}, follow=True)
    page = response.content.decode()
    assert "An invitation is waiting for you" in page
    assert "Acme Corp" in page and "Accept" in page and "Decline" in page


def test_a_member_with_one_organization_is_not_sent_past_a_pending_invitation(
    client, world, other_org_admin
):
    services.invite(actor=other_org_admin, organization=world.globex, username="carol")
    client.force_login(world.carol)
    response = client.get("/")
    assert response.status_code == 200
    assert "Globex" in response.content.decode()


def test_accepting_in_the_console_joins_and_opens_the_organization(client, world, org_admin, erin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    client.force_login(erin)
    response = client.post(f"/invitations/{invitation.pk}/accept/", follow=True)
    assert "You joined Acme Corp as member." in response.content.decode()
    assert OrganizationMembership.objects.filter(organization=world.acme, user=erin).exists()
    assert response.redirect_chain[-1][0].startswith("/o/acme/")


def test_declining_in_the_console(client, world, org_admin, erin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    client.force_login(erin)
    response = client.post(f"/invitations/{invitation.pk}/decline/", follow=True)
    page = response.content.decode()
    assert "You declined the invitation to Acme Corp." in page
    assert "Declined" in page
    assert not OrganizationMembership.objects.filter(user=erin).exists()


def test_an_expired_invitation_cannot_be_accepted_in_the_console(client, world, org_admin, erin):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
        traveller.shift(timedelta(days=8))
        client.force_login(erin)
        response = client.post(f"/invitations/{invitation.pk}/accept/", follow=True)
    assert "This invitation expired" in response.content.decode()
    assert not OrganizationMembership.objects.filter(user=erin).exists()


def test_nobody_else_can_answer_someone_elses_invitation_in_the_console(client, world, org_admin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    client.force_login(world.dave)
    assert client.post(f"/invitations/{invitation.pk}/accept/").status_code == 404
    assert client.get("/invitations/").content.decode().count("Acme Corp") == 0


def test_creating_a_person_is_offered_only_where_allowed(client, world, settings):
    client.force_login(world.alice)
    assert "Create a person" not in client.get(PEOPLE).content.decode()
    assert client.post(f"{PEOPLE}new/", {"username": "fresh", "role": "member"}).status_code == 403
    settings.KEYWARD_ALLOW_ORG_USER_CREATION = True
    response = client.post(
        f"{PEOPLE}new/", {"username": "fresh", "display_name": "Fresh", "role": "member"}
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    user = User.objects.get(username="fresh")
    password = page.split('id="created-password" class="mono" value="')[1].split('"')[0]
    assert user.check_password(password)
    assert password not in str(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert password not in client.get(PEOPLE).content.decode()


def test_a_new_person_s_name_follows_the_one_rule_for_names(client, world, settings):
    """The name was only measured: a control character went through where every other name
    in the product refuses it."""
    settings.KEYWARD_ALLOW_ORG_USER_CREATION = True
    client.force_login(world.alice)
    response = client.post(
        f"{PEOPLE}new/", {"username": "fresh", "display_name": "Fresh\u202egnp", "role": "member"}
    )
    assert response.status_code == 400
    assert "text-direction" in response.content.decode()
    assert not User.objects.filter(username="fresh").exists()
