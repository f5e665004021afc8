"""Staff views of the ads app. Creatives form the review queue (approve, or reject with
a reason the advertiser sees); raw events are read-only, kept for audit. Advertiser
text is shown through the admin's own escaping (never mark_safe / format_html of it)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from ads import index as ad_index
from ads.models import (
    AdFeedback,
    Advertiser,
    AdvertiserIdentityRevision,
    AdvertiserMembership,
    Campaign,
    CampaignKeyword,
    CampaignStatDaily,
    CampaignStatHourly,
    Click,
    Creative,
    GuestViewer,
    Impression,
    InvalidEvent,
    MinorConversation,
)
from ads.services import campaigns, review
from billing.public import balance_micros, ledger_credit


def usd(micros: int | None, places: int = 2) -> str:
    return "—" if micros is None else f"${micros / 1_000_000:,.{places}f}"


class MembershipInline(admin.TabularInline):
    model = AdvertiserMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Advertiser)
class AdvertiserAdmin(admin.ModelAdmin):
    list_display = ["name", "paid_by", "balance", "low_balance", "is_active", "created_at"]
    list_filter = ["is_active", ("low_balance_notified_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "paid_by", "contact_email", "members__email"]
    readonly_fields = ["balance_account", "balance", "low_balance_notified_at", "created_at", "updated_at"]
    inlines = [MembershipInline]
    actions = ["credit_balance"]

    @admin.display(description="balance")
    def balance(self, obj: Advertiser) -> str:
        return usd(balance_micros(account_id=obj.balance_account_id))

    @admin.display(description="low balance", boolean=True)
    def low_balance(self, obj: Advertiser) -> bool:
        return obj.low_balance_notified_at is not None

    def save_model(self, request, obj, form, change) -> None:
        if not change and not obj.balance_account_id:
            from billing.public import balance_account_create

            obj.balance_account = balance_account_create(name=f"Advertiser: {obj.name}"[:200])
        super().save_model(request, obj, form, change)
        ad_index.invalidate()

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else [f for f in self.readonly_fields if f != "balance_account"]

    # Without Stripe an advertiser cannot top up and is told to contact us: this is how staff credit them.
    @admin.action(description="Credit the balance of the selected advertisers…")
    def credit_balance(self, request, queryset):
        if "apply" in request.POST:
            form = CreditForm(request.POST)
            if form.is_valid():
                amount_micros = int(form.cleaned_data["amount"] * 1_000_000)
                for advertiser in queryset:
                    ledger_credit(
                        account_id=advertiser.balance_account_id,
                        amount_micros=amount_micros,
                        reference=f"staff-credit:{form.cleaned_data['reference']}:{advertiser.pk}",
                        memo=f"Staff credit by {request.user.email}: {form.cleaned_data['memo']}",
                    )
                self.message_user(request, f"Credited {usd(amount_micros)} to {queryset.count()} advertiser(s).")
                return None
        else:
            form = CreditForm(initial={"reference": uuid.uuid4().hex})
        context = {
            **self.admin_site.each_context(request),
            "title": "Credit advertiser balances",
            "form": form,
            "advertisers": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/ads/advertiser/credit.html", context)


class KeywordInline(admin.TabularInline):
    model = CampaignKeyword
    extra = 0


class CreativeInline(admin.TabularInline):
    model = Creative
    extra = 0
    fields = ["headline", "question", "landing_url", "review_status", "is_active"]
    readonly_fields = ["headline", "question", "landing_url", "review_status"]
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "advertiser",
        "status",
        "pause_reason",
        "bid_type",
        "max_bid",
        "daily_budget",
        "spent",
        "pacing",
        "language",
    ]
    list_filter = ["status", "pause_reason", "bid_type", "pacing", "language"]
    search_fields = ["name", "advertiser__name", "keywords__text"]
    list_select_related = ["advertiser"]
    readonly_fields = ["spent_micros", "spent_today_micros", "spend_day", "created_at", "updated_at"]
    autocomplete_fields = ["advertiser"]
    inlines = [KeywordInline, CreativeInline]
    actions = ["pause_campaigns", "activate_campaigns"]

    @admin.display(description="max bid", ordering="max_bid_micros")
    def max_bid(self, obj: Campaign) -> str:
        return usd(obj.max_bid_micros, 4)

    @admin.display(description="daily budget", ordering="daily_budget_micros")
    def daily_budget(self, obj: Campaign) -> str:
        return usd(obj.daily_budget_micros)

    @admin.display(description="spent", ordering="spent_micros")
    def spent(self, obj: Campaign) -> str:
        return f"{usd(obj.spent_micros)} of {usd(obj.lifetime_budget_micros)}"

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        campaigns.campaign_embed_later(campaign_id=obj.pk)
        ad_index.invalidate()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        ad_index.invalidate()

    @admin.action(description="Pause the selected campaigns (staff)")
    def pause_campaigns(self, request, queryset) -> None:
        count = queryset.filter(status=Campaign.Status.ACTIVE).update(
            status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.STAFF
        )
        ad_index.invalidate()
        self.message_user(request, f"Paused {count} campaign(s).")

    @admin.action(description="Activate the selected campaigns")
    def activate_campaigns(self, request, queryset) -> None:
        count = queryset.exclude(status=Campaign.Status.ENDED).update(status=Campaign.Status.ACTIVE, pause_reason="")
        ad_index.invalidate()
        self.message_user(request, f"Activated {count} campaign(s).")


class CreditForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount (USD)", min_value=Decimal("0.01"), max_value=Decimal("100000"), decimal_places=2
    )
    memo = forms.CharField(max_length=120, help_text="Why: shown in the ledger, e.g. 'paid by bank transfer, invoice 42'.")
    # Sent back with the form, so a double submit credits once (the ledger's idempotency key).
    reference = forms.CharField(widget=forms.HiddenInput, max_length=40)


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=500,
        help_text="Shown to the advertiser: say what to change.",
    )


class ReviewQueueActions:
    """Approve, or reject with a reason the advertiser sees: the two actions of each review
    queue (creatives, advertiser name changes). A queue names its items
    (`review_noun`, `review_label`) and how one is approved or rejected; the loop, the
    messages and the reason form are here, once."""

    review_noun = "item(s)"
    review_intro = "The reason is shown to the advertiser."
    # What approving or rejecting one item may refuse with: reported, the others go on.
    review_errors: tuple[type[Exception], ...] = (review.CreativeInvalid, review.AdvertiserIdentityInvalid,
                                                   review.ReviewStateError)

    def review_queryset(self, queryset):
        return queryset

    def review_label(self, obj) -> str:
        return str(obj)

    def review_approve_one(self, obj, reviewer) -> None:
        raise NotImplementedError

    def review_reject_one(self, obj, reviewer, reason: str) -> None:
        raise NotImplementedError

    def _review_each(self, request, queryset, verb: str, act) -> None:
        done = 0
        for obj in self.review_queryset(queryset):
            try:
                act(obj)
                done += 1
            except self.review_errors as exc:
                self.message_user(request, f"Not {verb.lower()} — {self.review_label(obj)}: {exc}", level=messages.ERROR)
        self.message_user(request, f"{verb} {done} {self.review_noun}.")

    def review_approve(self, request, queryset) -> None:
        self._review_each(request, queryset, "Approved", lambda obj: self.review_approve_one(obj, request.user))

    def review_reject(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._review_each(request, queryset, "Rejected", lambda obj: self.review_reject_one(obj, request.user, reason))
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reject {self.review_noun.replace('(s)', 's')}",
            "intro": self.review_intro,
            "form": form,
            "items": [(obj.pk, self.review_label(obj)) for obj in self.review_queryset(queryset)],
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/ads/reject.html", context)


@admin.register(Creative)
class CreativeAdmin(ReviewQueueActions, admin.ModelAdmin):
    review_noun = "creative(s)"
    review_intro = "Reject these creatives. The reason is shown to the advertiser."
    list_display = ["headline", "campaign", "advertiser", "review_status", "display_domain", "is_active", "created_at"]
    list_filter = ["review_status", "is_active", "campaign__status"]
    search_fields = ["headline", "text", "question", "landing_url", "campaign__name", "campaign__advertiser__name"]
    list_select_related = ["campaign", "campaign__advertiser"]
    readonly_fields = [
        "review_status",
        "review_reason",
        "reviewed_by",
        "reviewed_at",
        "automatic_checks",
        "impressions_count",
        "clicks_count",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["campaign"]
    actions = ["approve", "reject"]

    @admin.display(description="advertiser", ordering="campaign__advertiser__name")
    def advertiser(self, obj: Creative) -> str:
        return obj.campaign.advertiser.name

    @admin.display(description="automatic checks")
    def automatic_checks(self, obj: Creative) -> str:
        if obj.pk is None:
            return "—"
        errors = review.creative_check(**review.creative_fields(obj))
        return "passed" if not errors else "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())

    def save_model(self, request, obj, form, change) -> None:
        errors = review.creative_check(**review.creative_fields(obj))
        if errors:
            # The form's own validation ran; the review checks are stricter (https, domain, words).
            messages.error(request, "Saved, but the automatic checks fail: " + self.automatic_checks(obj))
        if change and form.changed_data:
            obj.review_status = Creative.ReviewStatus.PENDING  # edited text goes back to review
        super().save_model(request, obj, form, change)
        review.creative_embed_later(creative_id=obj.pk)
        ad_index.invalidate()

    def review_label(self, obj: Creative) -> str:
        return f"{obj.headline} — {obj.campaign.advertiser.name}"

    def review_approve_one(self, obj: Creative, reviewer) -> None:
        review.creative_approve(creative=obj, reviewer=reviewer)

    def review_reject_one(self, obj: Creative, reviewer, reason: str) -> None:
        review.creative_reject(creative=obj, reviewer=reviewer, reason=reason)

    @admin.action(description="Approve the selected creatives")
    def approve(self, request, queryset) -> None:
        self.review_approve(request, queryset)

    @admin.action(description="Reject the selected creatives (with a reason)…")
    def reject(self, request, queryset):
        return self.review_reject(request, queryset)


@admin.register(AdvertiserIdentityRevision)
class AdvertiserIdentityRevisionAdmin(ReviewQueueActions, admin.ModelAdmin):
    """The review queue of advertiser names and "paid by" (both on every card): approve,
    or reject with a reason the advertiser sees. Changes are made by advertisers only."""

    list_display = ["advertiser", "approved_name", "name", "paid_by", "status", "submitted_by", "submitted_at"]
    list_filter = ["status"]
    search_fields = ["name", "paid_by", "advertiser__name"]
    list_select_related = ["advertiser", "submitted_by"]
    readonly_fields = [
        "advertiser",
        "approved_name",
        "name",
        "paid_by",
        "status",
        "review_reason",
        "submitted_by",
        "submitted_at",
        "reviewed_by",
        "reviewed_at",
    ]
    actions = ["approve", "reject"]
    review_noun = "name change(s)"
    review_intro = ("Reject these name changes. The reason is shown to the advertiser; their cards keep the"
                    " approved name.")

    @admin.display(description="name on the cards now", ordering="advertiser__name")
    def approved_name(self, obj: AdvertiserIdentityRevision) -> str:
        return f"{obj.advertiser.name} (paid for by {obj.advertiser.display_paid_by})"

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def review_queryset(self, queryset):
        return queryset.select_related("advertiser")

    def review_label(self, obj: AdvertiserIdentityRevision) -> str:
        paid_by = f", paid for by “{obj.paid_by}”" if obj.paid_by else ""
        return f"{obj.advertiser.name} → “{obj.name}”{paid_by}"

    def review_approve_one(self, obj: AdvertiserIdentityRevision, reviewer) -> None:
        review.advertiser_identity_approve(revision=obj, reviewer=reviewer)

    def review_reject_one(self, obj: AdvertiserIdentityRevision, reviewer, reason: str) -> None:
        review.advertiser_identity_reject(revision=obj, reviewer=reviewer, reason=reason)

    @admin.action(description="Approve the selected name changes")
    def approve(self, request, queryset) -> None:
        self.review_approve(request, queryset)

    @admin.action(description="Reject the selected name changes (with a reason)…")
    def reject(self, request, queryset):
        return self.review_reject(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Raw events are an audit trail: staff read them, nobody edits them here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Impression)
class ImpressionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "served_at",
        "campaign",
        "advertiser",
        "viewer_key",
        "acknowledged_at",
        "is_valid",
        "invalid_reason",
        "price",
        "cost",
    ]
    list_filter = ["is_valid", "invalid_reason", "bid_type", ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["id", "viewer_key", "campaign__name", "advertiser__name"]
    list_select_related = ["campaign", "advertiser"]
    date_hierarchy = "served_at"

    @admin.display(description="second price")
    def price(self, obj: Impression) -> str:
        return usd(obj.price_micros, 4) + (" /click" if obj.bid_type == "cpc" else " /1000")

    @admin.display(description="cost")
    def cost(self, obj: Impression) -> str:
        return usd(obj.cost_micros, 4)


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = ["id", "clicked_at", "campaign", "is_valid", "invalid_reason", "cost", "viewer_key", "user_agent"]
    list_filter = ["is_valid", "invalid_reason"]
    search_fields = ["id", "viewer_key", "user_agent", "campaign__name"]
    list_select_related = ["campaign"]
    date_hierarchy = "clicked_at"

    @admin.display(description="cost")
    def cost(self, obj: Click) -> str:
        return usd(obj.cost_micros, 4)


@admin.register(InvalidEvent)
class InvalidEventAdmin(ReadOnlyAdmin):
    """Every refused acknowledgement and click, with its reason (never charged)."""

    list_display = ["created_at", "kind", "reason", "campaign", "advertiser", "viewer_key", "user_agent"]
    list_filter = ["kind", "reason"]
    search_fields = ["viewer_key", "user_agent", "campaign__name", "advertiser__name"]
    list_select_related = ["campaign", "advertiser"]
    date_hierarchy = "created_at"


@admin.register(GuestViewer)
class GuestViewerAdmin(ReadOnlyAdmin):
    """Guest sessions as the tracking endpoints first saw them, within the new-guest cap or not."""

    list_display = ["session_key", "first_seen_at", "within_cap"]
    list_filter = ["within_cap"]
    date_hierarchy = "first_seen_at"


@admin.register(MinorConversation)
class MinorConversationAdmin(ReadOnlyAdmin):
    """Conversations in which the person said they are under 18: never an ad in them (the
    id and when, nothing of what was said)."""

    list_display = ["conversation_id", "said_at"]
    search_fields = ["conversation_id"]
    date_hierarchy = "said_at"


@admin.register(AdFeedback)
class AdFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["impression", "kind", "campaign", "created_at"]
    list_filter = ["kind"]
    search_fields = ["impression__campaign__name", "impression__advertiser__name"]
    list_select_related = ["impression__campaign"]

    @admin.display(description="campaign")
    def campaign(self, obj: AdFeedback) -> str:
        return obj.impression.campaign.name


class StatAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "impressions", "invalid_impressions", "clicks", "invalid_clicks", "spend"]
    list_filter = ["campaign__advertiser"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign"]

    @admin.display(description="spend")
    def spend(self, obj) -> str:
        return usd(obj.spend_micros)


@admin.register(CampaignStatHourly)
class CampaignStatHourlyAdmin(StatAdmin):
    list_display = ["hour", *StatAdmin.list_display]
    date_hierarchy = "hour"


@admin.register(CampaignStatDaily)
class CampaignStatDailyAdmin(StatAdmin):
    list_display = ["day", *StatAdmin.list_display]
    date_hierarchy = "day"


@admin.register(AdvertiserMembership)
class AdvertiserMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "advertiser", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "advertiser__name"]
    list_select_related = ["user", "advertiser"]
    autocomplete_fields = ["user", "advertiser"]


@admin.register(CampaignKeyword)
class CampaignKeywordAdmin(admin.ModelAdmin):
    list_display = ["text", "match_type", "is_negative", "campaign"]
    list_filter = ["match_type", "is_negative"]
    search_fields = ["text", "campaign__name"]
    list_select_related = ["campaign"]
    autocomplete_fields = ["campaign"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        ad_index.invalidate()
