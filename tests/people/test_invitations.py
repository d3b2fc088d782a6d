"""Invitations through the services: who may invite, who may answer, what each answer does."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from access.errors import Forbidden, NotFound
from orgs.models import AuditEvent, OrganizationMembership, Role, User
from orgs.principals import Principal
from people import services
from people.models import Invitation, InvitationStatus
from tests.factories import OPERATOR, issue, make_user
from tokens.auth import authenticate

pytestmark = pytest.mark.django_db


def person(user):
    """The person acting in the console, outside any organization."""
    return Principal(user=user, organization=None)


@pytest.fixture
def erin(db):
    return make_user("erin", email="Erin@Example.com")


def test_an_admin_of_another_organization_invites_alice_without_making_her_a_member(
    world, other_org_admin
):
    """The finding: POST /members made alice a member of globex without her knowing."""
    invitation = services.invite(actor=other_org_admin, organization=world.globex, username="alice")
    assert invitation.status == InvitationStatus.PENDING
    assert not OrganizationMembership.objects.filter(
        organization=world.globex, user=world.alice
    ).exists()


def test_accepting_makes_the_person_a_member_with_the_invited_role(world, org_admin, erin):
    with time_machine.travel(timezone.now(), tick=False):
        invitation = services.invite(
            actor=org_admin, organization=world.acme, email="erin@example.com", role=Role.ADMIN
        )
    accepted = services.accept_invitation(actor=person(erin), invitation=invitation)
    assert accepted.status == InvitationStatus.ACCEPTED and accepted.answered_by == erin
    membership = OrganizationMembership.objects.get(organization=world.acme, user=erin)
    assert membership.role == Role.ADMIN
    actions = list(
        AuditEvent.objects.filter(organization=world.acme)
        .order_by("id")
        .values_list("action", "actor_name")[::-1][:3]
    )
    assert ("invitation.accepted", "erin") in actions and ("member.added", "erin") in actions
    created = AuditEvent.objects.get(action="invitation.created")
    assert created.actor == world.alice and created.object_repr == "erin@example.com"


def test_declining_changes_nothing_but_the_invitation(world, org_admin, erin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    services.decline_invitation(actor=person(erin), invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.DECLINED
    assert not OrganizationMembership.objects.filter(user=erin).exists()
    assert AuditEvent.objects.filter(action="invitation.declined", actor=erin).exists()
    with pytest.raises(ValidationError):
        services.accept_invitation(actor=person(erin), invitation=invitation)


def test_nobody_but_the_invited_person_answers(world, org_admin, erin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    for someone in (person(world.dave), org_admin, person(world.carol)):
        with pytest.raises(NotFound):
            services.accept_invitation(actor=someone, invitation=invitation)
    organization_token = issue(org_admin).secret
    actor = authenticate(f"Bearer {organization_token}", "192.0.2.1").principal
    with pytest.raises(NotFound):
        services.accept_invitation(actor=actor, invitation=invitation)


def test_a_username_taken_after_the_invitation_does_not_inherit_it(world, org_admin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="newhire")
    later = make_user("newhire")
    with pytest.raises(NotFound):
        services.accept_invitation(actor=person(later), invitation=invitation)
    assert not Invitation.objects.addressed_to(later).exists()


def test_an_invitation_expires_after_seven_days(world, org_admin, erin):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
        traveller.shift(timedelta(days=7, seconds=1))
        with pytest.raises(ValidationError, match="expired"):
            services.accept_invitation(actor=person(erin), invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.EXPIRED
    assert AuditEvent.objects.filter(action="invitation.expired").count() == 1
    assert not OrganizationMembership.objects.filter(user=erin).exists()


def test_expire_invitations_marks_overdue_ones_each_with_an_event(world, org_admin):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        services.invite(actor=org_admin, organization=world.acme, username="a1")
        services.invite(actor=org_admin, organization=world.acme, username="a2")
        traveller.shift(timedelta(days=3))
        services.invite(actor=org_admin, organization=world.acme, username="a3")
        traveller.shift(timedelta(days=4, seconds=1))
        assert services.expire_invitations(actor=OPERATOR) == 2
        assert services.expire_invitations(actor=OPERATOR) == 0
    assert AuditEvent.objects.filter(action="invitation.expired").count() == 2


def test_withdrawing_stops_an_invitation(world, org_admin, erin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    services.withdraw_invitation(actor=org_admin, invitation=invitation, expected_version=1)
    with pytest.raises(ValidationError, match="withdrawn"):
        services.accept_invitation(actor=person(erin), invitation=invitation)
    assert AuditEvent.objects.filter(action="invitation.withdrawn", actor=world.alice).exists()


def test_another_organization_cannot_withdraw_and_members_cannot_invite(
    world, org_admin, other_org_admin, member, group_admin
):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    with pytest.raises(NotFound):
        services.withdraw_invitation(actor=other_org_admin, invitation=invitation)
    for actor in (member, group_admin):
        with pytest.raises(Forbidden):
            services.invite(actor=actor, organization=world.acme, username="erin2")
        with pytest.raises(Forbidden):
            services.withdraw_invitation(actor=actor, invitation=invitation)


def test_nobody_invites_with_a_role_they_could_not_grant(world, org_admin):
    writer = issue(
        org_admin, role="custom", permissions=["api.users.read", "api.users.write"]
    ).secret
    actor = authenticate(f"Bearer {writer}", "192.0.2.1").principal
    with pytest.raises(ValidationError) as caught:
        services.invite(actor=actor, organization=world.acme, username="erin", role=Role.ADMIN)
    assert "role" in caught.value.message_dict
    with pytest.raises(ValidationError):
        services.invite(actor=actor, organization=world.acme, username="erin", role=Role.MEMBER)


def test_inviting_the_same_address_twice_is_refused_until_the_first_expires(world, org_admin):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        services.invite(actor=org_admin, organization=world.acme, email="x@example.com")
        with pytest.raises(ValidationError, match="already has a pending invitation"):
            services.invite(actor=org_admin, organization=world.acme, email="X@EXAMPLE.com")
        traveller.shift(timedelta(days=8))
        services.invite(actor=org_admin, organization=world.acme, email="X@EXAMPLE.com")
    assert Invitation.objects.filter(status=InvitationStatus.PENDING).count() == 1


def test_the_email_goes_only_to_the_typed_address_with_no_secret(
    world, org_admin, erin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.invite(actor=org_admin, organization=world.acme, email="erin@example.com")
        services.invite(actor=org_admin, organization=world.acme, email="nobody@example.org")
    assert [message.to for message in mail.outbox] == [["erin@example.com"], ["nobody@example.org"]]
    body = mail.outbox[0].body
    assert "Acme Corp" in body and "/invitations/" in body and "a member" in body


def test_a_username_invitation_mails_that_persons_own_address(
    world, org_admin, erin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.invite(actor=org_admin, organization=world.acme, username="erin")
        services.invite(actor=org_admin, organization=world.acme, username="no-such-person")
    assert [message.to for message in mail.outbox] == [[erin.email]]


def test_accepting_when_already_a_member_is_refused_and_leaves_it_pending(world, org_admin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="carol")
    with pytest.raises(ValidationError, match="already a member"):
        services.accept_invitation(actor=person(world.carol), invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_an_organization_deleted_takes_its_invitations_with_it(world, org_admin, erin):
    invitation = services.invite(actor=org_admin, organization=world.acme, username="erin")
    world.acme.delete()
    with pytest.raises(NotFound):
        services.accept_invitation(actor=person(erin), invitation=invitation)


def test_an_invitation_is_accepted_with_the_invitees_personal_token(world, org_admin, erin):
    """A person who already belongs to one organization answers through the API."""
    services.invite(actor=org_admin, organization=world.acme, username="dave")
    invitation = Invitation.objects.get(username="dave")
    secret = issue(world.principal(world.dave, world.globex), scope="personal", role="member")
    actor = authenticate(f"Bearer {secret.secret}", "192.0.2.1").principal
    services.accept_invitation(actor=actor, invitation=invitation)
    assert OrganizationMembership.objects.filter(organization=world.acme, user=world.dave).exists()


# People created by their organization ----------------------------------------------------------


def test_creating_people_is_off_unless_the_operator_allows_it(world, org_admin, settings):
    with pytest.raises(Forbidden, match="KEYWARD_ALLOW_ORG_USER_CREATION"):
        services.create_person(actor=org_admin, organization=world.acme, username="fresh")
    assert not User.objects.filter(username="fresh").exists()


def test_an_admin_creates_a_person_with_a_random_password_shown_once(world, org_admin, settings):
    settings.KEYWARD_ALLOW_ORG_USER_CREATION = True
    created = services.create_person(
        actor=org_admin, organization=world.acme, username="fresh", display_name="Fresh Person"
    )
    user = created.membership.user
    assert user.check_password(created.password) and len(created.password) >= 20
    assert user.email == "" and created.membership.role == Role.MEMBER
    event = AuditEvent.objects.get(action="user.created")
    assert created.password not in str(event.changes)
    with pytest.raises(ValidationError, match="taken"):
        services.create_person(actor=org_admin, organization=world.acme, username="fresh")


def test_members_cannot_create_people_even_where_allowed(world, member, settings):
    settings.KEYWARD_ALLOW_ORG_USER_CREATION = True
    with pytest.raises(Forbidden):
        services.create_person(actor=member, organization=world.acme, username="fresh")
