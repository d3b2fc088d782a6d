from django.contrib import admin
from django.urls import include, path

from config.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    # Console: every organization page lives under /o/<org_slug>/.
    path("o/<slug:org_slug>/", include("tokens.urls")),
    path("o/<slug:org_slug>/", include("policies.urls")),
    path("o/<slug:org_slug>/audit/", include("orgs.audit_urls")),
    path("o/<slug:org_slug>/webhooks/", include("webhooks.urls")),
    path("o/<slug:org_slug>/", include("people.organization_urls")),
    path("", include("people.urls")),
    path("", include("tokens.leak_urls")),
    path("", include("orgs.urls")),
]
