from django.contrib import admin

from assistant.models import API_KEY_ENV_PREFIXES, Attachment, Conversation, GenerationRun, Message, ModelTier, Project


@admin.register(ModelTier)
class ModelTierAdmin(admin.ModelAdmin):
    list_display = [
        "display_name", "slug", "served_model_name", "served_by", "base_url", "context_length",
        "max_output_tokens", "is_active", "sort_order",
    ]
    list_editable = ["is_active", "sort_order"]
    list_filter = ["is_active", "tokenizer"]
    search_fields = ["slug", "display_name", "served_model_name", "base_url"]
    prepopulated_fields = {"slug": ["display_name"]}
    fieldsets = (
        (None, {"fields": ("display_name", "slug", "description", "is_active", "sort_order")}),
        ("Server", {
            "fields": ("base_url", "served_model_name", "served_by", "api_key_env", "tokenizer"),
            "description": "The API key variable must start with " + ", ".join(API_KEY_ENV_PREFIXES)
            + ": a tier can never be pointed at another secret of the server.",
        }),
        ("Limits and sampling", {"fields": ("context_length", "max_output_tokens", "sampling")}),
    )


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "conversation"
    extra = 0
    fields = ["role", "status", "content", "tier", "prompt_tokens", "completion_tokens", "feedback", "created_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    ordering = ["created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "session_key", "tier", "ads_dismissed", "is_shared", "created_at", "updated_at"]
    list_filter = ["tier", "ads_dismissed", ("user", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["id", "title", "user__email", "session_key"]
    raw_id_fields = ["user"]
    readonly_fields = ["id", "created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [MessageInline]

    @admin.display(boolean=True, description="shared")
    def is_shared(self, obj: Conversation) -> bool:
        return bool(obj.share_token)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id", "conversation", "role", "status", "tier", "prompt_tokens", "completion_tokens", "feedback", "created_at",
    ]
    list_filter = ["role", "status", "feedback", "tier", "usage_counted", "created_at"]
    search_fields = ["id", "content", "conversation__id", "conversation__user__email"]
    raw_id_fields = ["conversation", "parent"]
    readonly_fields = ["id", "created_at", "updated_at"]
    date_hierarchy = "created_at"


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "tier", "status", "error_code", "owner", "last_seq", "started_at", "finished_at"]
    list_filter = ["status", "error_code", "tier", "started_at"]
    search_fields = ["id", "conversation__id", "owner", "client_id"]
    raw_id_fields = ["conversation", "user_message", "assistant_message"]
    readonly_fields = [
        "id", "owner", "heartbeat_at", "last_seq", "started_at", "first_token_at", "finished_at", "client_id",
    ]
    date_hierarchy = "started_at"


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "tier", "created_at", "updated_at"]
    search_fields = ["name", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["id", "created_at", "updated_at"]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Uploaded files' extracted text, kept with the message that used them (for support
    and data requests); read-only: what a person attached is not edited by staff."""

    list_display = ["name", "kind", "size", "pages", "user", "message", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["name", "user__email", "message__id"]
    raw_id_fields = ["user", "message"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
