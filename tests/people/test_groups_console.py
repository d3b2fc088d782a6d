import pytest

from tests.factories import HTMX, issue

pytestmark = pytest.mark.django_db


def test_org_admins_see_every_group(as_alice):
    content = as_alice.get("/o/acme/groups/").content.decode()
    assert 'href="/o/acme/groups/platform/"' in content
    assert 'href="/o/acme/groups/data/"' in content


def test_a_group_admin_sees_their_group_as_a_link(as_bob):
    content = as_bob.get("/o/acme/groups/").content.decode()
    assert 'href="/o/acme/groups/platform/"' in content
    assert "Data" not in content


def test_a_group_member_sees_the_group_without_managing_it(as_carol):
    content = as_carol.get("/o/acme/groups/").content.decode()
    assert "Platform" in content
    assert 'href="/o/acme/groups/platform/"' not in content


def test_the_group_page_lists_members_and_tokens(as_bob, org_admin, world):
    issue(org_admin, name="Platform deployer", scope="group", group=world.platform)
    issue(org_admin, name="Data loader", scope="group", group=world.data)
    content = as_bob.get("/o/acme/groups/platform/").content.decode()
    assert "Members" in content
    assert "bob" in content and "carol" in content and "Group admin" in content
    assert "Platform deployer" in content
    assert "Data loader" not in content
    assert 'href="/o/acme/groups/platform/tokens/new/"' in content


def test_the_group_token_list_filters_as_a_fragment(as_bob, org_admin, world):
    issue(org_admin, name="Platform deployer", scope="group", group=world.platform)
    issue(org_admin, name="Platform reader", scope="group", group=world.platform)
    content = as_bob.get("/o/acme/groups/platform/?q=read", **HTMX).content.decode()
    assert "<html" not in content
    assert "Platform reader" in content and "Platform deployer" not in content


def test_a_group_member_who_is_not_admin_gets_a_403(as_carol):
    response = as_carol.get("/o/acme/groups/platform/")
    assert response.status_code == 403
    assert b"Only the admins of Platform manage its tokens." in response.content


def test_a_group_the_person_is_not_in_is_a_404(as_bob):
    assert as_bob.get("/o/acme/groups/data/").status_code == 404
    assert as_bob.get("/o/acme/groups/nope/").status_code == 404


def test_personal_tokens_are_only_the_persons_own(as_carol, member, org_admin, world):
    issue(member, name="Carol laptop", scope="personal", role="member")
    issue(org_admin, name="Alice laptop", scope="personal", role="member")
    issue(org_admin, name="Org token")
    content = as_carol.get("/o/acme/me/tokens/").content.decode()
    assert "Carol laptop" in content
    assert "Alice laptop" not in content and "Org token" not in content


def test_an_unknown_page_in_the_console_is_a_404_in_the_console_look(as_alice):
    response = as_alice.get("/o/acme/tokens/999999/")
    content = response.content.decode()
    assert response.status_code == 404
    assert "Nothing here" in content
    assert "Back to Acme Corp" in content


def test_a_group_admin_reaches_their_groups_audit_log_from_the_navigation(as_bob, world):
    content = as_bob.get("/o/acme/groups/platform/").content.decode()
    assert '<li><a href="/o/acme/audit/">Audit log</a></li>' in content
    link = f'<a href="/o/acme/audit/?group={world.platform.pk}">Audit log of Platform</a>'
    assert link in content
    log = as_bob.get(f"/o/acme/audit/?group={world.platform.pk}")
    assert log.status_code == 200


def test_a_group_member_who_is_not_its_admin_is_not_offered_the_audit_log(as_carol):
    content = as_carol.get("/o/acme/me/tokens/").content.decode()
    assert 'href="/o/acme/audit/"' not in content
