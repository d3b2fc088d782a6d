"""Django admin, on Keyward's site: every change audited (``orgs.admin_site``)."""

from django.contrib.admin.apps import AdminConfig


class KeywardAdminConfig(AdminConfig):
    default_site = "orgs.admin_site.KeywardAdminSite"
