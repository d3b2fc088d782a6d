from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent, User, UserKind
from tests.factories import bulk_tokens, issue
from tokens.models import ApiToken, ExpiryReminder, TokenSecret, TokenStatus, TokenUsage
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tokens_apitoken_changelist"


def act(client, action, ids, **extra):
    return client.post(
        reverse(CHANGELIST), {"action": action, ACTION_CHECKBOX_NAME: ids, **extra}, follow=True
    )


# Registration ---------------------------------------------------------------------------------


def test_every_model_of_the_three_apps_is_registered_in_admin():
    for label in ("orgs", "tokens", "policies"):
        for model in apps.get_app_config(label).get_models():
            assert admin.site.is_registered(model), model


def test_every_changelist_and_its_search_loads_for_an_operator(staff_client, world, org_admin):
    issue(org_admin, name="Listed")
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ("orgs", "tokens", "policies"):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert staff_client.get(url).status_code == 200, url
        if model_admin.search_fields:
            assert staff_client.get(url, {"q": "acme"}).status_code == 200, url


# Tokens ---------------------------------------------------------------------------------------


def test_the_token_list_shows_status_scope_organization_and_technical_user(
    staff_client, world, org_admin
):
    issued = issue(org_admin, name="Deploy bot")
    response = staff_client.get(reverse(CHANGELIST))
    page = response.content.decode()
    assert "Deploy bot" in page and issued.token.partial_token in page
    assert "Acme Corp" in page and issued.token.user.username in page
    secret = TokenSecret.objects.get(token=issued.token)
    assert secret.digest not in page and issued.secret not in page


def test_an_operator_finds_a_token_by_name_organization_or_technical_user(
    staff_client, world, org_admin, other_org_admin
):
    wanted = issue(org_admin, name="Needle").token
    issue(other_org_admin, name="Haystack")
    for query in ("needle", "acme", wanted.user.username):
        page = staff_client.get(reverse(CHANGELIST), {"q": query}).content.decode()
        assert "Needle" in page and "Haystack" not in page, query


def test_the_token_page_never_shows_a_digest_and_has_nothing_to_save(
    staff_client, world, org_admin
):
    issued = issue(org_admin, name="Shown")
    url = reverse("admin:tokens_apitoken_change", args=[issued.token.pk])
    page = staff_client.get(url).content.decode()
    digest = TokenSecret.objects.get(token=issued.token).digest
    assert "Shown" in page and digest not in page
    assert 'name="_save"' not in page
    response = staff_client.post(url, {"name": "Renamed", "expires_at": ""})
    assert response.status_code == 403
    issued.token.refresh_from_db()
    assert issued.token.name == "Shown"


def test_tokens_cannot_be_added_in_admin(staff_client):
    assert staff_client.get(reverse("admin:tokens_apitoken_add")).status_code == 403
    page = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert reverse("admin:tokens_apitoken_add") not in page


def test_lookups_on_digests_are_refused(staff_client, world, org_admin):
    issued = issue(org_admin, name="Guarded")
    digest = TokenSecret.objects.get(token=issued.token).digest
    response = staff_client.get(reverse(CHANGELIST), {"secrets__digest": digest})
    assert response.status_code == 400
    response = staff_client.get(
        reverse("admin:tokens_tokensecret_changelist"), {"digest__startswith": digest[:4]}
    )
    assert response.status_code == 400


def test_the_secret_admin_lists_partial_tokens_never_digests(staff_client, world, org_admin):
    issued = issue(org_admin, name="Secretive")
    secret = TokenSecret.objects.get(token=issued.token)
    page = staff_client.get(reverse("admin:tokens_tokensecret_changelist")).content.decode()
    assert secret.partial_token in page and secret.digest not in page
    detail = staff_client.get(reverse("admin:tokens_tokensecret_change", args=[secret.pk]))
    assert secret.digest not in detail.content.decode()


def test_the_token_list_filters_by_derived_status(staff_client, world, org_admin):
    issue(org_admin, name="Still good", expires_in=timedelta(days=3))
    revoked = issue(org_admin, name="Pulled").token
    revoke_token(actor=org_admin, token=revoked)
    bulk_tokens(world.acme, 1, prefix="lapsed", expires_at=timezone.now() - timedelta(days=1))
    page = staff_client.get(reverse(CHANGELIST), {"state": "expired"}).content.decode()
    assert "lapsed" in page and "Still good" not in page and "Pulled" not in page
    page = staff_client.get(reverse(CHANGELIST), {"state": "revoked"}).content.decode()
    assert "Pulled" in page and "Still good" not in page


def test_the_token_list_makes_the_same_few_queries_for_ten_or_three_hundred_tokens(
    staff_client, world, django_assert_max_num_queries
):
    bulk_tokens(world.acme, 10, prefix="few")
    with django_assert_max_num_queries(12) as few:
        assert staff_client.get(reverse(CHANGELIST)).status_code == 200
    bulk_tokens(world.acme, 290, prefix="many", group=world.platform)
    bulk_tokens(world.globex, 200, prefix="elsewhere")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert page.count('class="action-select"') == 100  # a full page, no query per row


def test_the_admin_index_names_each_model_in_plain_english_once(staff_client, world):
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert ">Scope policies</a>" in page and "policys" not in page
    assert page.count(">Groups</a>") == 1
    assert ">Staff permission groups</a>" in page


def test_a_tokens_page_heads_its_secrets_in_english(staff_client, world, org_admin):
    token = issue(org_admin, name="Headed").token
    page = staff_client.get(reverse("admin:tokens_apitoken_change", args=[token.pk]))
    content = page.content.decode()
    assert "Secrets (their digests are never shown)" in content
    assert "shown)s" not in content


# Actions --------------------------------------------------------------------------------------


def test_revoke_selected_goes_through_the_service_with_one_event_per_token_naming_the_operator(
    staff_client, staff, world, org_admin
):
    tokens = [issue(org_admin, name=f"Bulk {index}").token for index in range(3)]
    ids = [token.pk for token in tokens]
    response = act(staff_client, "revoke_selected", ids, confirmed="yes", reason="Leaked in CI")
    assert "Revoked 3 token(s)." in response.content.decode()
    for token in tokens:
        token.refresh_from_db()
        assert token.status == TokenStatus.REVOKED and token.version == 2
        assert token.revoked_reason == "Leaked in CI"
        event = AuditEvent.objects.get(action="token.revoked", object_id=str(token.pk))
        assert event.actor == staff and event.actor_kind == "operator"
        assert event.actor_name == "operator (admin)"
        assert event.changes["status"] == {"before": "active", "after": "revoked"}


def test_revoke_selected_asks_for_confirmation_and_a_reason_first(staff_client, world, org_admin):
    tokens = [issue(org_admin, name=f"Suspect {index}").token for index in range(2)]
    ids = [token.pk for token in tokens]
    confirmation = act(staff_client, "revoke_selected", ids).content.decode()
    assert "Revoke these tokens?" in confirmation
    assert "Suspect 0" in confirmation and "Suspect 1" in confirmation
    assert '<label for="id_reason">Reason</label>' in confirmation
    without_reason = act(staff_client, "revoke_selected", ids, confirmed="yes", reason=" ")
    assert "Say why these tokens are revoked" in without_reason.content.decode()
    assert not ApiToken.objects.filter(pk__in=ids, status=TokenStatus.REVOKED).exists()
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_revoking_an_already_revoked_token_is_reported_and_changes_nothing(
    staff_client, world, org_admin
):
    active = issue(org_admin, name="Active one").token
    revoked = issue(org_admin, name="Old one").token
    revoke_token(actor=org_admin, token=revoked)
    response = act(
        staff_client, "revoke_selected", [active.pk, revoked.pk], confirmed="yes", reason="Old"
    )
    page = response.content.decode()
    assert "Revoked 1 token(s)." in page and "1 not changed" in page and "already revoked" in page
    assert AuditEvent.objects.filter(action="token.revoked").count() == 2


def test_restore_selected_makes_tokens_work_again_with_audit(staff_client, staff, world, org_admin):
    token = issue(org_admin, name="Back again").token
    revoke_token(actor=org_admin, token=token)
    act(staff_client, "restore_selected", [token.pk])
    token.refresh_from_db()
    assert token.status == TokenStatus.ACTIVE
    assert AuditEvent.objects.get(action="token.restored").actor == staff


def test_delete_selected_asks_first_then_deletes_through_the_service(
    staff_client, staff, world, org_admin
):
    tokens = [issue(org_admin, name=f"Doomed {index}").token for index in range(2)]
    ids = [token.pk for token in tokens]
    confirmation = act(staff_client, "delete_selected_tokens", ids)
    assert "Delete these tokens?" in confirmation.content.decode()
    assert ApiToken.objects.filter(pk__in=ids).count() == 2

    response = act(staff_client, "delete_selected_tokens", ids, confirmed="yes")
    assert "Deleted 2 token(s)." in response.content.decode()
    assert not ApiToken.objects.filter(pk__in=ids).exists()
    events = AuditEvent.objects.filter(action="token.deleted")
    assert events.count() == 2 and {event.actor for event in events} == {staff}
    for token in tokens:
        assert not User.objects.get(pk=token.user_id).is_active


def test_django_s_own_delete_is_not_offered_for_tokens(staff_client, world, org_admin):
    token = issue(org_admin, name="Kept").token
    page = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert 'value="delete_selected"' not in page
    response = staff_client.post(reverse("admin:tokens_apitoken_delete", args=[token.pk]))
    assert response.status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_staff_without_token_permissions_cannot_run_token_actions(client, world, org_admin):
    token = issue(org_admin, name="Protected").token
    viewer = User.objects.create_user("viewer", password="viewer-password", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client.force_login(viewer)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "Protected" in page and "revoke_selected" not in page
    act(client, "revoke_selected", [token.pk], confirmed="yes", reason="Not theirs to do")
    token.refresh_from_db()
    assert token.status == TokenStatus.ACTIVE


# Users ----------------------------------------------------------------------------------------


def test_technical_users_are_recognisable_and_filterable(staff_client, world, org_admin):
    issued = issue(org_admin, name="Robot")
    url = reverse("admin:orgs_user_changelist")
    page = staff_client.get(url, {"kind__exact": UserKind.TECHNICAL}).content.decode()
    assert issued.token.user.username in page and ">alice<" not in page
    page = staff_client.get(url, {"kind__exact": UserKind.HUMAN}).content.decode()
    assert issued.token.user.username not in page and "alice" in page


def test_a_technical_user_cannot_be_given_staff_rights_or_a_password(
    staff_client, world, org_admin
):
    user = issue(org_admin, name="Robot").token.user
    url = reverse("admin:orgs_user_change", args=[user.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="is_staff"' not in page and 'name="is_superuser"' not in page
    assert "password" not in page.lower() or 'name="password' not in page
    staff_client.post(
        url, {"username": "sneaky", "is_staff": "on", "is_superuser": "on", "kind": "human"}
    )
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
    assert user.kind == UserKind.TECHNICAL and user.username != "sneaky"

    password_url = reverse("admin:auth_user_password_change", args=[user.pk])
    response = staff_client.post(
        password_url, {"password1": "S3cure-enough-pass", "password2": "S3cure-enough-pass"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_a_person_s_kind_cannot_be_changed_in_admin(staff_client, world):
    url = reverse("admin:orgs_user_change", args=[world.carol.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="kind"' not in page


def test_users_with_tokens_cannot_be_deleted_in_admin(staff_client, world, member):
    issue(member, scope="personal", role="member", name="Mine")
    url = reverse("admin:orgs_user_delete", args=[world.carol.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert ApiToken.objects.filter(user=world.carol).exists()


# Audit events ---------------------------------------------------------------------------------


def test_audit_events_are_read_only_for_everyone_even_superusers(staff_client, world, org_admin):
    issue(org_admin, name="Audited")
    event = AuditEvent.objects.first()
    change_url = reverse("admin:orgs_auditevent_change", args=[event.pk])
    page = staff_client.get(change_url).content.decode()
    assert event.actor_name in page and 'name="_save"' not in page
    assert staff_client.get(reverse("admin:orgs_auditevent_add")).status_code == 403
    assert staff_client.post(change_url, {"action": "forged"}).status_code == 403
    delete_url = reverse("admin:orgs_auditevent_delete", args=[event.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    listing = staff_client.get(reverse("admin:orgs_auditevent_changelist")).content.decode()
    assert "delete_selected" not in listing
    event.refresh_from_db()
    assert event.action != "forged"


def test_organizations_and_policies_are_read_only_in_admin(staff_client, world):
    url = reverse("admin:orgs_organization_change", args=[world.acme.pk])
    assert staff_client.post(url, {"name": "Renamed", "slug": "acme"}).status_code == 403
    assert staff_client.get(reverse("admin:orgs_organization_add")).status_code == 403
    policy = world.acme.security_policy
    url = reverse("admin:policies_securitypolicy_change", args=[policy.pk])
    assert staff_client.get(url).status_code == 200
    assert staff_client.post(url, {}).status_code == 403


def test_no_changelist_makes_a_query_per_row(staff_client, world, org_admin):
    """Every list of the three apps costs the same queries for a few rows as for many."""

    def query_counts():
        counts = {}
        for model in admin.site._registry:
            if model._meta.app_label not in ("orgs", "tokens", "policies"):
                continue
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            with CaptureQueriesContext(connection) as captured:
                assert staff_client.get(url).status_code == 200
            counts[url] = len(captured.captured_queries)
        return counts

    def add_rows(prefix):
        ids = bulk_tokens(world.acme, 40, prefix=prefix, group=world.platform)
        today = timezone.now().date()
        TokenUsage.objects.bulk_create([TokenUsage(token_id=pk, day=today, count=1) for pk in ids])
        ExpiryReminder.objects.bulk_create(
            [ExpiryReminder(token_id=pk, threshold_days=7, expires_at=timezone.now()) for pk in ids]
        )
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(organization=world.acme, actor_name="x", actor_kind="human", action="a")
                for _ in range(40)
            ]
        )

    add_rows("first")
    few = query_counts()
    add_rows("second")
    add_rows("third")
    assert query_counts() == few
