"""Invitations in Chromium: an admin invites, the invited person accepts or declines on their
next sign-in, and an admin withdraws."""

import re

import pytest
from playwright.sync_api import expect

from orgs.models import OrganizationMembership
from people import services
from people.models import Invitation, InvitationStatus
from tests.browser.conftest import screenshot
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_invites_by_email_and_the_person_accepts_on_next_sign_in(world, page, sign_in):
    make_user("erin", email="erin@example.com")
    sign_in("alice")
    page.get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()
    page.get_by_label("E-mail address or username").fill("erin@example.com")
    page.get_by_label("Role").first.select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invited erin@example.com as admin.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("erin@example.com"))
    expect(row.get_by_text("Pending")).to_be_visible()
    screenshot(page, "people")

    page.locator("details.user-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in("erin")
    expect(page.get_by_role("heading", name="An invitation is waiting for you")).to_be_visible()
    expect(page.get_by_text("Acme Corp invites you as admin")).to_be_visible()
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_text("You joined Acme Corp as admin.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/o/acme/"))
    membership = OrganizationMembership.objects.get(organization=world.acme, user__username="erin")
    assert membership.role == "admin"


def test_the_invited_person_declines_from_their_invitations_page(world, page, sign_in):
    make_user("erin")
    services.invite(
        actor=world.principal(world.dave, world.globex),
        organization=world.globex,
        username="erin",
    )
    sign_in("erin")
    page.goto("/invitations/")
    expect(page.get_by_role("heading", name="Waiting for your answer")).to_be_visible()
    page.get_by_role("button", name="Decline the invitation to Globex").click()
    expect(page.get_by_text("You declined the invitation to Globex.")).to_be_visible()
    expect(page.get_by_text("No invitation is waiting for you.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Globex.*Declined"))).to_be_visible()
    assert not OrganizationMembership.objects.filter(user__username="erin").exists()


def test_an_admin_withdraws_an_invitation_and_it_can_no_longer_be_accepted(
    world, page, sign_in, browser, live_server
):
    make_user("erin")
    invitation = services.invite(
        actor=world.principal(world.alice), organization=world.acme, username="erin"
    )
    sign_in("alice")
    page.goto("/o/acme/people/")
    page.get_by_role("button", name="Withdraw the invitation of erin").click()
    expect(page.get_by_text("Withdrew the invitation of erin.")).to_be_visible()
    expect(
        page.get_by_role("row", name=re.compile("erin")).get_by_text("Withdrawn")
    ).to_be_visible()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.WITHDRAWN

    context = browser.new_context(base_url=live_server.url)
    other = context.new_page()
    other.goto("/login/")
    other.get_by_label("Username").fill("erin")
    other.get_by_label("Password").fill("correct-horse-battery-staple")
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_text("No organization yet")).to_be_visible()
    other.goto("/invitations/")
    expect(other.get_by_text("No invitation is waiting for you.")).to_be_visible()
    context.close()
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.WITHDRAWN
