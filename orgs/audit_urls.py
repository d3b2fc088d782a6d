from django.urls import path

from orgs import audit_views

app_name = "audit"
urlpatterns = [
    path("", audit_views.log, name="log"),
    path("export.csv", audit_views.export, name="export"),
    path("exports/", audit_views.exports, name="exports"),
    path("exports/<int:export_id>/download/", audit_views.export_download, name="export-download"),
]
