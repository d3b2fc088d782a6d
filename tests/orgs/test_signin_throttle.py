import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def attempt(username, password, address="198.51.100.7"):
    request = RequestFactory().post("/login/", REMOTE_ADDR=address)
    return authenticate(request, username=username, password=password)


def test_an_account_is_blocked_after_too_many_failures_even_with_the_right_password(settings):
    settings.KEYWARD_SIGNIN_FAILURES_PER_ACCOUNT = 5
    make_user("victim")
    for index in range(5):
        assert attempt("victim", f"guess {index}", address=f"198.51.100.{index}") is None
    assert attempt("victim", PASSWORD, address="203.0.113.1") is None
    assert attempt("other-user-not-blocked", "x") is None


def test_one_address_is_blocked_after_failures_across_many_accounts(settings):
    settings.KEYWARD_SIGNIN_FAILURES_PER_ADDRESS = 5
    make_user("bystander")
    for index in range(5):
        attempt(f"sprayed{index}", "password1", address="203.0.113.66")
    assert attempt("bystander", PASSWORD, address="203.0.113.66") is None
    assert attempt("bystander", PASSWORD, address="203.0.113.67") is not None


def test_a_success_forgets_the_accounts_earlier_failures(settings):
    settings.KEYWARD_SIGNIN_FAILURES_PER_ACCOUNT = 3
    make_user("forgetful")
    attempt("forgetful", "wrong")
    attempt("forgetful", "wrong")
    assert attempt("forgetful", PASSWORD) is not None
    attempt("forgetful", "wrong")
    attempt("forgetful", "wrong")
    assert attempt("forgetful", PASSWORD) is not None


def test_the_sign_in_page_refuses_a_blocked_account(client, settings):
    settings.KEYWARD_SIGNIN_FAILURES_PER_ACCOUNT = 2
    make_user("blocked")
    for _ in range(2):
        client.post("/login/", {"username": "blocked", "password": "nope"})
    response = client.post("/login/", {"username": "blocked", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
