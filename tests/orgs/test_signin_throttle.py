"""Sign-in lockouts (django-axes): the pair of account and address, a ceiling per address, a
message that says when to retry, the same for accounts that exist and those that do not."""

import re
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.utils import timezone

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

SIGN_IN = "/login/"
NEW = "A-new-long-pass-9"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.KEYWARD_SIGNIN_ADDRESS_FAILURE_LIMIT = 8
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def sign_in(client, username, password, address="198.51.100.7"):
    return client.post(SIGN_IN, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client):
    return "_auth_user_id" in client.session


def test_guessing_an_account_from_one_address_locks_that_pair_not_the_account(client):
    """The finding: ten wrong passwords locked the account from every address."""
    make_user("victim")
    for index in range(3):
        sign_in(client, "victim", f"guess {index}", address="203.0.113.66")
    response = sign_in(client, "victim", PASSWORD, address="203.0.113.66")
    assert response.status_code == 429 and not signed_in(client)
    response = sign_in(client, "victim", PASSWORD, address="198.51.100.20")
    assert response.status_code == 302 and signed_in(client)


def test_a_locked_pair_sees_the_sign_in_page_with_when_to_retry(client):
    make_user("victim")
    start = timezone.now().replace(hour=14, minute=17, second=0, microsecond=0)
    with time_machine.travel(start, tick=False):
        for _ in range(2):
            response = sign_in(client, "victim", "nope")
            assert response.status_code == 200
            assert "Please enter a correct username and password" in response.content.decode()
        response = sign_in(client, "victim", "nope")
    page = response.content.decode()
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Sign in to Keyward" in page and 'name="password"' in page
    assert "Too many failed sign-ins" in page
    assert "Try again after 14:32 UTC (in 15 minutes)" in page


def test_the_lockout_answer_is_the_same_for_an_existing_and_an_unknown_account(client):
    make_user("existing")
    start = timezone.now()
    answers = {}
    for username, address in (("existing", "192.0.2.1"), ("nobody-here", "192.0.2.2")):
        with time_machine.travel(start, tick=False):
            for _ in range(3):
                sign_in(client, username, "wrong", address=address)
            response = sign_in(client, username, "wrong", address=address)
        body = response.content.decode().replace(username, "USERNAME")
        body = re.sub(r"[A-Za-z0-9]{64}", "CSRF", body)  # the CSRF token differs per request
        answers[username] = (response.status_code, response["Retry-After"], body)
    assert answers["existing"] == answers["nobody-here"]
    assert answers["existing"][0] == 429


def test_one_address_spraying_many_accounts_meets_the_ceiling(client):
    make_user("bystander")
    for index in range(8):
        sign_in(client, f"sprayed{index}", "password1", address="203.0.113.66")
    assert sign_in(client, "bystander", PASSWORD, address="203.0.113.66").status_code == 429
    assert not signed_in(client)
    assert sign_in(client, "bystander", PASSWORD, address="203.0.113.67").status_code == 302


def test_the_lock_ends_after_the_cool_off_and_failures_while_locked_do_not_extend_it(client):
    make_user("patient")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(3):
            sign_in(client, "patient", "wrong")
        traveller.shift(timedelta(minutes=10))
        assert sign_in(client, "patient", "wrong").status_code == 429  # not counted
        traveller.shift(timedelta(minutes=5, seconds=1))
        assert sign_in(client, "patient", PASSWORD).status_code == 302


def test_a_success_forgets_the_pairs_earlier_failures(client):
    make_user("forgetful")
    for _ in range(2):
        sign_in(client, "forgetful", "wrong")
    assert sign_in(client, "forgetful", PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        sign_in(client, "forgetful", "wrong")
    assert sign_in(client, "forgetful", PASSWORD).status_code == 302


def test_changing_the_case_of_the_username_does_not_buy_more_guesses(client):
    make_user("casey")
    for username in ("casey", "CASEY", "Casey"):
        sign_in(client, username, "wrong")
    assert sign_in(client, "casey", PASSWORD).status_code == 429


def test_django_admin_sign_in_shares_the_lockout(client):
    make_user("operator", is_staff=True)
    for _ in range(3):
        client.post(
            "/admin/login/?next=/admin/",
            {"username": "operator", "password": "wrong"},
            REMOTE_ADDR="198.51.100.7",
        )
    assert sign_in(client, "operator", PASSWORD).status_code == 429


def test_the_lockout_is_counted_in_the_database_and_holds_with_the_cache_down(client, settings):
    settings.CACHES = {"default": {"BACKEND": "tests.tokens.broken_cache.BrokenCache"}}
    make_user("steady")
    for _ in range(3):
        sign_in(client, "steady", "wrong")
    assert AccessAttempt.objects.get(username="steady").failures_since_start == 3
    assert sign_in(client, "steady", PASSWORD).status_code == 429


# The password change page (issue 22) --------------------------------------------------------


def change_password(client, old, address="198.51.100.7"):
    return client.post(
        "/password/",
        {"old_password": old, "new_password1": NEW, "new_password2": NEW},
        REMOTE_ADDR=address,
    )


def test_old_password_guesses_on_the_password_page_share_the_sign_in_lockout(client):
    """The finding: 15 wrong old passwords, then the right one, and no lockout."""
    user = make_user("changer")
    client.force_login(user)
    for _ in range(2):
        response = change_password(client, "guess")
        assert response.status_code == 200
        assert "Your old password was entered incorrectly" in response.content.decode()
    response = change_password(client, "guess")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "Change your password" in response.content.decode()
    response = change_password(client, PASSWORD)
    assert response.status_code == 429
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # ...and the sign-in page from that address is locked for the account too.
    client.logout()
    assert sign_in(client, "changer", PASSWORD).status_code == 429


def test_failed_sign_ins_count_on_the_password_page(client):
    user = make_user("changer2")
    for _ in range(3):
        sign_in(client, "changer2", "wrong")
    client.force_login(user)
    assert change_password(client, PASSWORD).status_code == 429


def test_the_right_old_password_changes_it(client):
    user = make_user("changer3")
    client.force_login(user)
    response = change_password(client, PASSWORD)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW)


def test_one_ipv6_subscriber_rotating_addresses_meets_the_same_lockout(client):
    """An IPv6 subscriber holds a whole /64: a new address per guess must not buy more
    guesses. Another /64 is not affected."""
    make_user("victim")
    for index in range(3):
        sign_in(client, "victim", f"guess {index}", address=f"2001:db8:7:7::{index + 1}")
    response = sign_in(client, "victim", PASSWORD, address="2001:db8:7:7:abcd::9")
    assert response.status_code == 429 and not signed_in(client)
    response = sign_in(client, "victim", PASSWORD, address="2001:db8:7:8::1")
    assert response.status_code == 302 and signed_in(client)
