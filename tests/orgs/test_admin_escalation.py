"""Django admin for a staff user who is not a superuser: no way up, and everything audited.

The finding: a staff user holding only ``change_user`` made themselves superuser by posting
``is_superuser``, set another person's password and signed in as an organization admin, and
Keyward's audit log had nothing.
"""

from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group as PermissionGroup
from django.contrib.auth.models import Permission
from django.urls import reverse

from orgs.admin_site import Audited
from orgs.models import AuditEvent, User
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

STAFF_PASSWORD = "staff-password-long-9"


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def staff(db):
    """A staff user with the user permissions, and no more."""
    user = User.objects.create_user("helpdesk", password=STAFF_PASSWORD, is_staff=True)
    grant(user, "view_user", "change_user", "add_user", "delete_user")
    return user


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "root-password-long-9")


def change_form(user, **fields):
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def test_a_staff_user_cannot_make_themselves_superuser_staff_or_give_permissions(
    staff_client, staff
):
    everything = Permission.objects.values_list("pk", flat=True)
    group = PermissionGroup.objects.create(name="all powers")
    url = reverse("admin:orgs_user_change", args=[staff.pk])
    page = staff_client.get(url).content.decode()
    for field in ("is_superuser", "is_staff", "user_permissions", "groups", "email"):
        assert f'name="{field}"' not in page, field
    staff_client.post(
        url,
        change_form(
            staff,
            display_name="Help desk",
            is_staff="on",
            is_superuser="on",
            user_permissions=list(everything),
            groups=[group.pk],
            email="ceo@example.com",
        ),
    )
    staff.refresh_from_db()
    assert staff.display_name == "Help desk"  # the form was saved...
    assert not staff.is_superuser  # ...without any of the rights
    assert staff.user_permissions.count() == 4 and not staff.groups.exists()
    assert staff.email == ""


def test_a_staff_user_cannot_set_another_persons_password(staff_client, world):
    url = reverse("admin:auth_user_password_change", args=[world.alice.pk])
    assert staff_client.get(url).status_code == 403
    response = staff_client.post(
        url, {"password1": "Taken-over-pass-9", "password2": "Taken-over-pass-9"}
    )
    assert response.status_code == 403
    world.alice.refresh_from_db()
    assert world.alice.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def test_a_staff_user_s_own_password_goes_through_djangos_page_with_the_old_one(
    staff_client, staff
):
    url = reverse("admin:auth_user_password_change", args=[staff.pk])
    response = staff_client.get(url)
    assert response.status_code == 302 and response["Location"] == reverse("admin:password_change")
    staff_client.post(url, {"password1": "No-old-needed-9", "password2": "No-old-needed-9"})
    staff.refresh_from_db()
    assert staff.check_password(STAFF_PASSWORD)

    response = staff_client.post(
        reverse("admin:password_change"),
        {
            "old_password": STAFF_PASSWORD,
            "new_password1": "Fresh-staff-pass-9",
            "new_password2": "Fresh-staff-pass-9",
        },
    )
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.check_password("Fresh-staff-pass-9")
    event = AuditEvent.objects.get(action="user.password_changed")
    assert event.actor == staff and event.actor_kind == "operator"
    assert event.actor_name == "helpdesk (admin)"
    assert staff.password not in str(event.changes)


def test_old_password_guesses_on_the_admin_password_page_share_the_lockout(
    staff_client, staff, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        response = staff_client.post(
            reverse("admin:password_change"),
            {
                "old_password": "guess",
                "new_password1": "X-pass-long-9",
                "new_password2": "X-pass-long-9",
            },
        )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()


def test_a_staff_user_cannot_change_or_delete_a_superuser(staff_client, superuser):
    url = reverse("admin:orgs_user_change", args=[superuser.pk])
    response = staff_client.post(url, change_form(superuser, username="demoted", is_active=None))
    assert response.status_code == 403
    delete = reverse("admin:orgs_user_delete", args=[superuser.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    superuser.refresh_from_db()
    assert superuser.username == "root" and superuser.is_active


def test_a_staff_user_in_a_permission_group_cannot_give_it_permissions(client, staff):
    group = PermissionGroup.objects.create(name="help desk")
    staff.groups.add(group)
    grant(staff, "view_group", "change_group", "add_group")
    client.force_login(staff)
    url = reverse("admin:auth_group_change", args=[group.pk])
    response = client.post(
        url,
        {"name": "help desk", "permissions": list(Permission.objects.values_list("pk", flat=True))},
    )
    assert response.status_code == 403
    assert not group.permissions.exists()
    assert client.post(reverse("admin:auth_group_add"), {"name": "new"}).status_code == 403


def test_signing_in_as_the_escalated_staff_user_gives_no_organization(client, staff, world):
    """The end of the finding's chain: even after all of this, no way into acme."""
    client.force_login(staff)
    client.post(
        reverse("admin:orgs_user_change", args=[staff.pk]),
        change_form(staff, is_superuser="on"),
    )
    client.post(
        reverse("admin:auth_user_password_change", args=[world.alice.pk]),
        {"password1": "Taken-over-pass-9", "password2": "Taken-over-pass-9"},
    )
    staff.refresh_from_db()
    assert not staff.is_superuser
    client.logout()
    response = client.post("/login/", {"username": "alice", "password": "Taken-over-pass-9"})
    assert "_auth_user_id" not in client.session and response.status_code == 200


# Audit ------------------------------------------------------------------------------------------


def test_a_change_in_admin_writes_an_event_with_the_operator_and_before_and_after(
    staff_client, staff, world
):
    url = reverse("admin:orgs_user_change", args=[world.carol.pk])
    staff_client.post(url, change_form(world.carol, display_name="Carol C.", is_active=None))
    world.carol.refresh_from_db()
    assert not world.carol.is_active
    event = AuditEvent.objects.get(action="admin.changed")
    assert event.actor == staff and event.actor_name == "helpdesk (admin)"
    assert event.actor_kind == "operator"
    assert event.object_type == "user" and event.object_id == str(world.carol.pk)
    assert event.changes["display_name"] == {"before": "", "after": "Carol C."}
    assert event.changes["is_active"] == {"before": True, "after": False}
    assert "password" not in event.changes


def test_adding_a_person_in_admin_is_audited_without_the_password(staff_client):
    response = staff_client.post(
        reverse("admin:orgs_user_add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "Newcomer-pass-9",
            "password2": "Newcomer-pass-9",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="newcomer")
    event = AuditEvent.objects.get(action="admin.added")
    assert event.object_id == str(user.pk) and event.changes["username"]["after"] == "newcomer"
    assert event.changes["password"] == {"before": None, "after": "set"}
    assert user.password not in str(event.changes)


def test_a_superuser_setting_a_password_is_audited_as_a_change(client, superuser, world):
    client.force_login(superuser)
    url = reverse("admin:auth_user_password_change", args=[world.carol.pk])
    response = client.post(
        url,
        {"usable_password": "true", "password1": "Reset-by-root-9", "password2": "Reset-by-root-9"},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.changed", object_id=str(world.carol.pk))
    assert event.actor == superuser
    assert event.changes["password"] == {"before": "set", "after": "changed"}
    world.carol.refresh_from_db()
    assert world.carol.password not in str(event.changes)


def test_deleting_in_admin_is_audited_with_what_was_deleted(staff_client):
    doomed = make_user("doomed", display_name="Doomed Person")
    url = reverse("admin:orgs_user_delete", args=[doomed.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    event = AuditEvent.objects.get(action="admin.deleted")
    assert event.object_repr == "Doomed Person"
    assert event.changes["username"] == {"before": "doomed", "after": None}


def test_a_bulk_action_is_audited_per_object_and_as_an_action(superuser, client):
    client.force_login(superuser)
    people = [make_user(f"bulk{index}") for index in range(3)]
    group = PermissionGroup.objects.create(name="bulk")
    response = client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [group.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not PermissionGroup.objects.exists()
    deleted = AuditEvent.objects.get(action="admin.deleted")
    assert deleted.object_type == "group" and deleted.object_repr == "bulk"
    action = AuditEvent.objects.get(action="admin.action")
    assert action.changes["action"]["after"] == "delete_selected"
    assert action.changes["objects"]["after"] == ["bulk"]
    assert all(User.objects.filter(pk=person.pk).exists() for person in people)


def test_asking_to_confirm_an_action_records_nothing(superuser, client):
    client.force_login(superuser)
    group = PermissionGroup.objects.create(name="kept")
    response = client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [group.pk]},
    )
    assert response.status_code == 200  # the confirmation page
    assert not AuditEvent.objects.exists()


def test_the_event_is_written_in_the_same_transaction_as_the_change(staff_client, world):
    url = reverse("admin:orgs_user_change", args=[world.carol.pk])
    failing = mock.patch("orgs.admin_site.audit.record", side_effect=RuntimeError("audit down"))
    with failing, pytest.raises(RuntimeError):
        staff_client.post(url, change_form(world.carol, display_name="Unaudited"))
    world.carol.refresh_from_db()
    assert world.carol.display_name == ""


def test_every_model_admin_on_the_site_is_audited():
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, Audited)
    ]
    assert unaudited == []
