"""The person's own page for reporting leaked tokens, outside any organization."""

from django.urls import path

from tokens import leak_views

urlpatterns = [
    path("leaked-tokens/report/", leak_views.report_leak, name="report-leak"),
]
