from django.contrib import admin, messages

from assistant.api.keys import api_key_revoke
from assistant.api.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see and revoke keys; only their owners create them (the secret is shown once, to them)."""

    list_display = ("name", "prefix", "user", "status", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "prefix", "user__email")
    readonly_fields = ("user", "prefix", "secret_hash", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "prefix", "tier_slugs", "expires_at", "created_at", "last_used_at", "revoked_at",
              "secret_hash")
    raw_id_fields = ("user",)
    actions = ("revoke",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        return obj.status

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset) -> None:
        revoked = sum(api_key_revoke(key=key) for key in queryset.filter(revoked_at__isnull=True))
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
