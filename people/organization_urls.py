"""The organization's People page, under /o/<org_slug>/."""

from django.urls import path

from people import views

app_name = "members"
urlpatterns = [
    path("people/", views.people, name="people"),
    path("people/invite/", views.invite, name="invite"),
    path("people/new/", views.create_person, name="create-person"),
    path("people/invitations/<int:invitation_id>/withdraw/", views.withdraw, name="withdraw"),
]
