from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mail.models import OutgoingEmail


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(admin.ModelAdmin):
    """The outbox, for operators to see what went out and what is stuck; read-only."""

    list_display = ("created_at", "purpose", "subject", "status", "attempts", "sent_at")
    list_filter = ("status", "purpose")
    search_fields = ("subject", "recipients")
    readonly_fields = [field.name for field in OutgoingEmail._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
