from typing import Any

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config.api import api


class FaviconView(RedirectView):
    """/favicon.ico: Keyward's icon, looked up when asked (the static manifest may not exist
    yet when the URLs are imported)."""

    permanent = True

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str:
        return static("favicon.svg")


urlpatterns = [
    # Pages that name no icon (API docs, development error pages) make browsers ask for this.
    path("favicon.ico", FaviconView.as_view()),
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
