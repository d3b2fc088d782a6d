import pytest
from django.contrib.auth import SESSION_KEY

from orgs.models import UserKind
from tests.factories import HTMX, PASSWORD, add_member, make_user

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_labels_its_fields(client):
    response = client.get("/login/")
    content = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in content
    assert '<label for="id_password">Password</label>' in content


def test_a_person_signs_in_and_lands_in_their_only_organization(client, world):
    response = client.post("/login/", {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/o/acme/tokens/"
    assert b"Organization tokens" in response.content


def test_a_technical_user_cannot_sign_in_even_with_a_password(client, world):
    make_user("robot", kind=UserKind.TECHNICAL)
    response = client.post("/login/", {"username": "robot", "password": PASSWORD})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert SESSION_KEY not in client.session


def test_a_wrong_password_says_so_without_signing_in(client, world):
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert b"Please enter a correct username and password" in response.content
    assert SESSION_KEY not in client.session


def test_signing_out_needs_a_post_and_ends_the_session(client, world):
    client.force_login(world.alice)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/"
    assert SESSION_KEY not in client.session


def test_a_person_in_several_organizations_chooses_one(client, world):
    add_member(world.globex, world.alice)
    client.force_login(world.alice)
    response = client.get("/")
    content = response.content.decode()
    assert "Acme Corp" in content and "Globex" in content
    assert 'href="/o/globex/"' in content


def test_the_organization_switcher_lists_the_other_organizations(client, world):
    add_member(world.globex, world.alice)
    client.force_login(world.alice)
    content = client.get("/o/acme/tokens/").content.decode()
    assert "Switch organization" in content
    assert 'href="/o/globex/"' in content


def test_an_organization_the_person_is_not_in_is_a_404(client, world):
    client.force_login(world.alice)
    assert client.get("/o/globex/tokens/").status_code == 404
    assert client.get("/o/globex/").status_code == 404


def test_a_person_without_organizations_is_told_what_to_do(client, db):
    client.force_login(make_user("loner"))
    response = client.get("/")
    assert b"not a member of any organization" in response.content


def test_members_land_on_their_personal_tokens(client, world):
    client.force_login(world.carol)
    response = client.get("/o/acme/")
    assert response.headers["Location"] == "/o/acme/me/tokens/"


def test_password_change_keeps_the_person_signed_in(client, world):
    client.force_login(world.alice)
    response = client.post(
        "/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
        follow=True,
    )
    assert b"Your password is changed." in response.content
    world.alice.refresh_from_db()
    assert world.alice.check_password("a-new-long-passphrase-42")
    assert client.get("/o/acme/tokens/").status_code == 200


def test_password_change_with_a_wrong_old_password_shows_the_error_beside_it(client, world):
    client.force_login(world.alice)
    response = client.post(
        "/password/",
        {"old_password": "wrong", "new_password1": "x-long-pass-1234", "new_password2": "x"},
    )
    content = response.content.decode()
    assert 'id="old_password-error"' in content
    assert "Your old password was entered incorrectly" in content
    world.alice.refresh_from_db()
    assert world.alice.check_password(PASSWORD)


def test_an_expired_session_during_an_htmx_request_loads_the_sign_in_page_whole(client, world):
    response = client.get("/o/acme/tokens/?q=ci", **HTMX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/login/?next=")
    assert not response.content


def test_an_expired_session_during_an_htmx_post_also_redirects_to_sign_in(client, world):
    response = client.post("/o/acme/tokens/1/revoke/", {"version": 1}, **HTMX)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/login/")


def test_console_pages_carry_the_security_headers(client, world):
    client.force_login(world.alice)
    response = client.get("/o/acme/tokens/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert b"<script>" not in response.content
    assert b'hx-headers=\'{"X-CSRFToken": "' in response.content
