from django import forms
from django.contrib import admin, messages
from django.db.models import Sum
from django.utils import timezone

from billing.grants import plan_grant_revoke
from billing.ledger import balance_micros
from billing.models import (
    ApiTierPrice,
    ApiUsageRecord,
    BalanceAccount,
    Customer,
    LedgerEntry,
    Plan,
    PlanGrant,
    QuotaReservation,
    QuotaUsage,
    StripeEvent,
    Subscription,
)
from billing.selectors import model_tier_names
from billing.stripe_api import stripe_configured
from billing.subscriptions import subscription_resync
from billing.templatetags.billing_tags import usd


class PlanAdminForm(forms.ModelForm):
    """The tiers a plan unlocks as one checkbox per model tier (stored as their slugs)."""

    model_tier_slugs = forms.MultipleChoiceField(
        label="Model tiers", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The models this plan unlocks.",
    )

    class Meta:
        model = Plan
        fields = [
            "name", "slug", "description", "is_active", "sort_order", "stripe_monthly_lookup_key",
            "stripe_yearly_lookup_key", "monthly_price_micros", "yearly_price_micros", "model_tier_slugs",
            "daily_tokens", "requests_per_minute", "concurrent_runs", "max_context", "ads_enabled",
            "api_requests_per_minute", "api_tokens_per_minute", "api_tokens_per_day", "api_concurrent_streams",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = list(model_tier_names().items())
        known = {slug for slug, _name in choices}
        # A slug whose tier was deleted stays visible (and can be unticked) rather than vanish.
        choices += [(slug, f"{slug} (no such tier)") for slug in self.instance.model_tier_slugs if slug not in known]
        self.fields["model_tier_slugs"].choices = choices


class ModelTierFilter(admin.SimpleListFilter):
    title = "model tier"
    parameter_name = "model_tier"

    def lookups(self, request, model_admin):
        return list(model_tier_names().items())

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(pk__in=[plan.pk for plan in queryset if self.value() in plan.model_tier_slugs])


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = [
        "name", "slug", "monthly_price", "daily_tokens", "requests_per_minute", "concurrent_runs", "max_context",
        "ads_enabled", "is_active", "sort_order",
    ]
    list_filter = ["is_active", "ads_enabled", ModelTierFilter]
    list_editable = ["is_active", "sort_order"]
    search_fields = ["slug", "name", "stripe_monthly_lookup_key", "stripe_yearly_lookup_key"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_active", "sort_order"]}),
        ("Stripe", {"fields": ["stripe_monthly_lookup_key", "stripe_yearly_lookup_key", "monthly_price_micros",
                               "yearly_price_micros"]}),
        ("Entitlements", {"fields": ["model_tier_slugs", "daily_tokens", "requests_per_minute", "concurrent_runs",
                                     "max_context", "ads_enabled"]}),
        ("API limits", {"fields": ["api_requests_per_minute", "api_tokens_per_minute", "api_tokens_per_day",
                                   "api_concurrent_streams"],
                        "description": "Per account, all its API keys together; 0 refuses every API request."}),
    ]

    @admin.display(description="monthly", ordering="monthly_price_micros")
    def monthly_price(self, obj: Plan) -> str:
        return usd(obj.monthly_price_micros)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["user", "stripe_customer_id", "created_at"]
    search_fields = ["user__email", "stripe_customer_id"]
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "stripe_subscription_id", "customer", "plan", "status", "current_period_end", "cancel_at_period_end",
        "grace_period_end", "updated_at",
    ]
    list_filter = ["status", "plan", "cancel_at_period_end"]
    search_fields = ["stripe_subscription_id", "customer__user__email", "customer__stripe_customer_id"]
    list_select_related = ["customer__user", "plan"]
    date_hierarchy = "created_at"
    actions = ["resync_from_stripe"]
    # A snapshot of Stripe: edited in Stripe (or its Customer Portal), never here.
    readonly_fields = [f.name for f in Subscription._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Re-sync selected subscriptions from Stripe")
    def resync_from_stripe(self, request, queryset) -> None:
        if not stripe_configured():
            self.message_user(request, "Stripe is not configured.", messages.ERROR)
            return
        for sub in queryset:
            subscription_resync(stripe_subscription_id=sub.stripe_subscription_id)
        self.message_user(request, f"Re-synced {queryset.count()} subscription(s).")


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "created", "received_at", "processed_at", "result"]
    list_filter = ["type", ("processed_at", admin.EmptyFieldListFilter), "livemode"]
    search_fields = ["event_id", "type", "result"]
    date_hierarchy = "created"
    readonly_fields = [f.name for f in StripeEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PlanGrant)
class PlanGrantAdmin(admin.ModelAdmin):
    """Staff give a plan here (works without Stripe): add a grant, or revoke selected ones."""

    list_display = ["user", "plan", "reason", "starts_at", "ends_at", "revoked_at", "granted_by"]
    list_filter = ["plan", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "reason"]
    autocomplete_fields = ["user"]
    fields = ["user", "plan", "reason", "starts_at", "ends_at", "revoked_at", "granted_by"]
    readonly_fields = ["granted_by", "revoked_at"]
    actions = ["revoke"]

    def get_changeform_initial_data(self, request):
        return {"starts_at": timezone.now()}

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.granted_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected grants")
    def revoke(self, request, queryset) -> None:
        for grant in queryset:
            plan_grant_revoke(grant=grant)
        self.message_user(request, f"Revoked {queryset.count()} grant(s).")


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "amount", "reference", "memo"]
    readonly_fields = ["created_at", "kind", "amount", "reference", "memo"]
    extra = 0
    can_delete = False
    ordering = ["-created_at"]
    show_change_link = False

    @admin.display(description="amount")
    def amount(self, obj: LedgerEntry) -> str:
        return usd(obj.amount_micros)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BalanceAccount)
class BalanceAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "currency", "balance", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["balance", "created_at"]
    inlines = [LedgerEntryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(balance_sum=Sum("entries__amount_micros"))

    @admin.display(description="balance", ordering="balance_sum")
    def balance(self, obj: BalanceAccount) -> str:
        total = getattr(obj, "balance_sum", None)
        return usd(total if total is not None else balance_micros(account_id=obj.pk))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Append-only: entries are written by services (top-ups, ad spend), never edited or deleted."""

    list_display = ["created_at", "account", "kind", "amount", "reference", "memo"]
    list_filter = ["kind", "account"]
    search_fields = ["reference", "memo", "account__name"]
    date_hierarchy = "created_at"
    list_select_related = ["account"]
    readonly_fields = ["account", "kind", "amount_micros", "reference", "memo", "created_at"]

    @admin.display(description="amount", ordering="amount_micros")
    def amount(self, obj: LedgerEntry) -> str:
        return usd(obj.amount_micros)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(QuotaUsage)
class QuotaUsageAdmin(admin.ModelAdmin):
    list_display = ["subject", "day", "tokens_used", "requests", "minute_requests"]
    list_filter = ["day"]
    search_fields = ["subject"]
    readonly_fields = ["subject", "day", "tokens_used", "requests", "minute_start", "minute_requests", "minute_tokens"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(QuotaReservation)
class QuotaReservationAdmin(admin.ModelAdmin):
    list_display = ["id", "usage", "tokens", "created_at", "expires_at", "settled_at"]
    list_filter = [("settled_at", admin.EmptyFieldListFilter)]
    search_fields = ["usage__subject"]
    readonly_fields = ["usage", "tokens", "created_at", "expires_at", "settled_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ApiTierPrice)
class ApiTierPriceAdmin(admin.ModelAdmin):
    """The mirror of each tier's metered Stripe price: edit it here when the price changes in Stripe."""

    list_display = ["tier_slug", "meter_event_name", "price_per_million", "stripe_price_lookup_key", "updated_at"]
    search_fields = ["tier_slug", "meter_event_name", "stripe_price_lookup_key"]
    readonly_fields = ["updated_at"]

    @admin.display(description="per million tokens", ordering="micros_per_million_tokens")
    def price_per_million(self, obj: ApiTierPrice) -> str:
        return usd(obj.micros_per_million_tokens)


@admin.register(ApiUsageRecord)
class ApiUsageRecordAdmin(admin.ModelAdmin):
    """Written by the API and the reporter only; staff may clear a refused record's error to report it again."""

    list_display = [
        "created_at", "user", "key_name", "tier_slug", "prompt_tokens", "completion_tokens", "billable",
        "reported_at", "report_error",
    ]
    list_filter = ["billable", ("reported_at", admin.EmptyFieldListFilter), "tier_slug"]
    search_fields = ["request_id", "identifier", "key_id", "key_name", "user__email", "stripe_customer_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    readonly_fields = [f.name for f in ApiUsageRecord._meta.fields]
    actions = ["report_again"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Clear the Stripe error: report again on the next run")
    def report_again(self, request, queryset) -> None:
        count = queryset.filter(reported_at__isnull=True).exclude(report_error="").update(
            report_error="", claimed_until=None
        )
        self.message_user(request, f"{count} record(s) will be reported again.")
