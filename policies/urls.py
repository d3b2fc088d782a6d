from django.urls import path

from policies import views

app_name = "policies"
urlpatterns = [
    path("ip-filters/", views.ip_filter_list, name="ip-filter-list"),
    path("ip-filters/new/", views.ip_filter_create, name="ip-filter-create"),
    path("ip-filters/check/", views.ip_filter_check, name="ip-filter-check"),
    path("ip-filters/<int:filter_id>/", views.ip_filter_detail, name="ip-filter-detail"),
    path("ip-filters/<int:filter_id>/edit/", views.ip_filter_edit, name="ip-filter-edit"),
    path("ip-filters/<int:filter_id>/delete/", views.ip_filter_delete, name="ip-filter-delete"),
    path("ip-filters/<int:filter_id>/test/", views.ip_filter_test, name="ip-filter-test"),
    path("policy/", views.policy, name="policy"),
    path("policy/preview/", views.policy_preview, name="policy-preview"),
]
