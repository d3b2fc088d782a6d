"""The person's own pages, outside any organization: the landing page and their invitations."""

from django.urls import path

from people import views

urlpatterns = [
    path("", views.home, name="home"),
    path("invitations/", views.my_invitations, name="my-invitations"),
    path(
        "invitations/<int:invitation_id>/accept/",
        views.accept_invitation,
        name="invitation-accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        views.decline_invitation,
        name="invitation-decline",
    ),
]
