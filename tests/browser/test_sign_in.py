import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_person_signs_in_with_the_form_and_sees_their_organizations(world, page, sign_in):
    sign_in("alice")
    assert page.get_by_text("Acme Corp").first.is_visible()


def test_a_wrong_password_keeps_the_person_on_the_sign_in_page(world, page, sign_in):
    sign_in("alice", "wrong password")
    assert "/login/" in page.url
