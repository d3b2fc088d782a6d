from django.urls import path

from tokens import views

app_name = "tokens"
urlpatterns = [
    path("", views.organization_home, name="organization-home"),
    path("tokens/", views.token_list, name="list"),
    path("tokens/new/", views.token_create, name="create"),
    path("tokens/inactive/", views.token_inactive, name="inactive"),
    path("tokens/<int:token_id>/", views.token_detail, name="detail"),
    path("tokens/<int:token_id>/edit/", views.token_rename, name="rename"),
    path(
        "tokens/<int:token_id>/permissions/",
        views.token_edit_permissions,
        name="edit-permissions",
    ),
    path(
        "tokens/<int:token_id>/permissions/preview/",
        views.permission_preview,
        name="permission-preview",
    ),
    path("tokens/<int:token_id>/addresses/", views.token_addresses, name="addresses"),
    path("tokens/<int:token_id>/regenerate/", views.token_regenerate, name="regenerate"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="revoke"),
    path("tokens/<int:token_id>/restore/", views.token_restore, name="restore"),
    path("tokens/<int:token_id>/delete/", views.token_delete, name="delete"),
    path("groups/", views.group_list, name="group-list"),
    path("groups/<slug:group_slug>/", views.group_detail, name="group-detail"),
    path("groups/<slug:group_slug>/tokens/new/", views.group_create, name="group-create"),
    path("groups/<slug:group_slug>/inactive/", views.group_inactive, name="group-inactive"),
    path("me/tokens/", views.personal_list, name="personal-list"),
    path("me/tokens/new/", views.personal_create, name="personal-create"),
    path("me/tokens/inactive/", views.personal_inactive, name="personal-inactive"),
]
