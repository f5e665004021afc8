"""Ads: advertisers, campaigns, creatives, and the raw events (impressions, clicks,
feedback) kept for audit, with hourly and daily roll-ups for reporting.

All money is integer micros of USD (1 USD = 1_000_000 micros). Business logic lives
in ads/services/ (writes) and ads/selectors.py (reads), not here.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Advertiser(models.Model):
    """An organisation that buys sponsored suggestions from a prepaid balance."""

    name = models.CharField(max_length=120, help_text="Shown to users on the card as the advertiser.")
    paid_by = models.CharField(
        max_length=160,
        blank=True,
        help_text='Who paid for the ads, shown under "Why this ad?" (defaults to the name).',
    )
    website = models.URLField(max_length=300, blank=True)
    contact_email = models.EmailField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="AdvertiserMembership", related_name="advertisers", blank=True
    )
    balance_account = models.OneToOneField(
        "billing.BalanceAccount", on_delete=models.PROTECT, related_name="advertiser"
    )
    low_balance_threshold_micros = models.BigIntegerField(
        default=5_000_000, help_text="A notice is sent when the balance falls below this (micros)."
    )
    # Set when the low-balance notice went out; cleared once the balance is back above
    # the threshold. The dashboard shows a warning while it is set.
    low_balance_notified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="Staff can switch an advertiser off entirely.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_paid_by(self) -> str:
        return self.paid_by or self.name


class AdvertiserIdentityRevision(models.Model):
    """A change of the advertiser's name or "paid by" (both appear on every card)
    waiting for staff review, as an edited creative does. Cards keep showing the
    approved Advertiser.name and paid_by until staff approve the change."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"  # replaced by a newer change, or changed back

    advertiser = models.ForeignKey(Advertiser, on_delete=models.CASCADE, related_name="identity_revisions")
    name = models.CharField(max_length=120)
    paid_by = models.CharField(max_length=160, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    review_reason = models.TextField(blank=True, help_text="Shown to the advertiser when rejected.")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = "advertiser name change"
        constraints = [
            models.UniqueConstraint(
                fields=["advertiser"], condition=Q(status="pending"), name="ads_identity_one_pending"
            )
        ]

    def __str__(self) -> str:
        return f"{self.advertiser_id}: {self.name} ({self.status})"


class AdvertiserMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"  # everything, including members and top-ups
        MANAGER = "manager", "Manager"  # campaigns and creatives
        VIEWER = "viewer", "Viewer"  # reports only

    advertiser = models.ForeignKey(Advertiser, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="advertiser_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MANAGER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["advertiser", "user"], name="ads_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.advertiser} ({self.role})"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ENDED = "ended", "Ended"

    class PauseReason(models.TextChoices):
        NONE = "", "—"
        ADVERTISER = "advertiser", "Paused by the advertiser"
        BALANCE = "balance", "Balance exhausted"
        BUDGET = "budget", "Lifetime budget spent"
        STAFF = "staff", "Paused by staff"

    class Pacing(models.TextChoices):
        EVEN = "even", "Even (spread across the day)"
        ASAP = "asap", "As fast as possible"

    class BidType(models.TextChoices):
        CPC = "cpc", "Cost per click"
        CPM = "cpm", "Cost per thousand impressions"

    advertiser = models.ForeignKey(Advertiser, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    pause_reason = models.CharField(max_length=12, choices=PauseReason.choices, default="", blank=True)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: as soon as it is active.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until the budget is spent.")
    daily_budget_micros = models.BigIntegerField(default=10_000_000)
    lifetime_budget_micros = models.BigIntegerField(default=100_000_000)
    pacing = models.CharField(max_length=4, choices=Pacing.choices, default=Pacing.EVEN)
    bid_type = models.CharField(max_length=3, choices=BidType.choices, default=BidType.CPC)
    max_bid_micros = models.BigIntegerField(
        default=500_000, help_text="CPC: most paid per click. CPM: most paid per thousand impressions."
    )
    frequency_cap_hour = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Most impressions per viewer per hour (empty: no cap)."
    )
    frequency_cap_day = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Most impressions per viewer per day (empty: no cap)."
    )
    language = models.CharField(max_length=8, default="en", blank=True, help_text="Empty: any language.")
    context_hints = models.TextField(
        blank=True,
        max_length=2000,
        help_text="Free text describing the conversations this campaign fits; matched by meaning.",
    )
    # Cached sentence embedding of context_hints (float32 little-endian bytes) and the
    # hash of the text it was computed from; recomputed by a task when the text changes.
    hints_embedding = models.BinaryField(null=True, blank=True, editable=False)
    hints_embedding_hash = models.CharField(max_length=64, blank=True, editable=False)
    # Spend counters, changed only by ads.services under a row lock (see charge_*).
    spent_micros = models.BigIntegerField(default=0, editable=False)
    spent_today_micros = models.BigIntegerField(default=0, editable=False)
    spend_day = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(max_bid_micros__gt=0), name="ads_campaign_bid_positive"),
            models.CheckConstraint(condition=Q(daily_budget_micros__gte=0), name="ads_campaign_daily_nonneg"),
            models.CheckConstraint(condition=Q(lifetime_budget_micros__gte=0), name="ads_campaign_lifetime_nonneg"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignKeyword(models.Model):
    """A targeting keyword. Match types follow search advertising: exact, phrase, broad."""

    class MatchType(models.TextChoices):
        EXACT = "exact", "Exact"
        PHRASE = "phrase", "Phrase"
        BROAD = "broad", "Broad"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="keywords")
    text = models.CharField(max_length=80)
    match_type = models.CharField(max_length=6, choices=MatchType.choices, default=MatchType.BROAD)
    is_negative = models.BooleanField(default=False, help_text="Never show this campaign when it matches.")

    class Meta:
        ordering = ["is_negative", "text"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "text", "match_type", "is_negative"], name="ads_keyword_unique")
        ]

    def __str__(self) -> str:
        return ("-" if self.is_negative else "") + f"{self.text} ({self.match_type})"


class Creative(models.Model):
    """A sponsored suggestion. Serves only once review_status is approved."""

    class ReviewStatus(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="creatives")
    question = models.CharField(max_length=160, help_text="A follow-up question the user can ask the assistant.")
    headline = models.CharField(max_length=60)
    text = models.CharField(max_length=180)
    landing_url = models.URLField(max_length=500, help_text="https only.")
    display_domain = models.CharField(max_length=100, help_text="Must be the landing URL's host (or its parent).")
    is_active = models.BooleanField(default=True)
    review_status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.PENDING, db_index=True
    )
    review_reason = models.TextField(blank=True, help_text="Shown to the advertiser when rejected.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    embedding_hash = models.CharField(max_length=64, blank=True, editable=False)
    # Counters for the predicted CTR (valid events only).
    impressions_count = models.BigIntegerField(default=0, editable=False)
    clicks_count = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.headline

    @property
    def embedding_text(self) -> str:
        return f"{self.headline}. {self.text} {self.question}"


class InvalidReason(models.TextChoices):
    """Why an acknowledgement or a click was refused (recorded, shown to the advertiser,
    never charged). docs/ads.md, "Invalid traffic", says when each applies."""

    NONE = "", "—"
    DUPLICATE = "duplicate", "Duplicate"  # a replayed acknowledgement, a later click
    BOT = "bot", "Known bot"  # crawlerdetect's list, or no User-Agent
    NOT_VIEWABLE = "not_viewable", "Not viewable"  # under 1 s in view, or acknowledged < 1 s after sending
    FOREIGN_VIEWER = "foreign_viewer", "Another viewer"  # not the viewer the impression was served to
    EXPIRED = "expired", "Expired"  # acknowledged after its window, or a link past its lifetime
    RATE_LIMITED = "rate_limited", "Rate-limited"  # over the per-viewer or per-address limit
    NEVER_SHOWN = "never_shown", "Never shown"  # a click on an impression never acknowledged viewable
    TAMPERED = "tampered", "Tampered link"  # a click token whose signature does not verify
    GUEST_UNVERIFIED = "guest_unverified", "Unverified guest"  # no finished answer, or over the new-guest cap
    UNKNOWN = "unknown", "Unknown impression"
    NOT_APPROVED = "not_approved", "Creative no longer approved"
    BUDGET = "budget", "Budget or balance exhausted"


class Impression(models.Model):
    """One ad served to one viewer. It counts (and a CPM campaign pays) only once the
    browser acknowledges that the card was shown."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    creative = models.ForeignKey(Creative, on_delete=models.PROTECT, related_name="impressions")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="impressions")
    advertiser = models.ForeignKey(Advertiser, on_delete=models.PROTECT, related_name="impressions")
    conversation_id = models.UUIDField(null=True, blank=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    session_key = models.CharField(max_length=64, blank=True)
    viewer_key = models.CharField(max_length=80, help_text='"user:<id>" or "session:<key>".')
    served_at = models.DateTimeField(db_index=True)
    # When the ad frame first went to the browser (None: never sent, or served before
    # this was recorded); an acknowledgement less than a second after it is not viewable.
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # None until acknowledged; then True (counted) or False with a reason.
    is_valid = models.BooleanField(null=True, blank=True)
    invalid_reason = models.CharField(max_length=32, choices=InvalidReason.choices, blank=True)
    visible_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Continuous time in view the browser measured before acknowledging."
    )
    # Set once, by the one billable click (a conditional UPDATE ... WHERE clicked_at IS NULL).
    clicked_at = models.DateTimeField(null=True, blank=True)
    bid_type = models.CharField(max_length=3, choices=Campaign.BidType.choices)
    bid_micros = models.BigIntegerField(help_text="The campaign's max bid when served.")
    price_micros = models.BigIntegerField(help_text="Second price, per click (CPC) or per thousand (CPM).")
    cost_micros = models.BigIntegerField(default=0, help_text="Charged for this impression (CPM only).")
    relevance = models.FloatField(default=0.0)
    predicted_ctr = models.FloatField(default=0.0)
    score = models.FloatField(default=0.0)
    matched = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=8, blank=True)

    class Meta:
        ordering = ["-served_at"]
        indexes = [
            models.Index(fields=["viewer_key", "served_at"], name="ads_imp_viewer_time"),
            models.Index(fields=["campaign", "served_at"], name="ads_imp_campaign_time"),
        ]

    def __str__(self) -> str:
        return str(self.id)


class Click(models.Model):
    """A click through the signed redirect; invalid ones are kept (never charged)."""

    InvalidReason = InvalidReason

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    impression = models.ForeignKey(Impression, on_delete=models.PROTECT, null=True, blank=True, related_name="clicks")
    creative = models.ForeignKey(Creative, on_delete=models.PROTECT, null=True, blank=True, related_name="clicks")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="clicks")
    clicked_at = models.DateTimeField(db_index=True)
    is_valid = models.BooleanField(default=False)
    invalid_reason = models.CharField(max_length=16, choices=InvalidReason.choices, blank=True)
    cost_micros = models.BigIntegerField(default=0)
    user_agent = models.CharField(max_length=300, blank=True)
    viewer_key = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["-clicked_at"]
        indexes = [models.Index(fields=["campaign", "clicked_at"], name="ads_click_campaign_time")]

    def __str__(self) -> str:
        return str(self.id)


class InvalidEvent(models.Model):
    """One refused acknowledgement or click: written for every one, kept for audit and
    the invalid-traffic reports, never charged. The client's address is kept only as
    a keyed hash of its network (tracking.client_hash), never the address itself."""

    class Kind(models.TextChoices):
        IMPRESSION = "impression", "Impression acknowledgement"
        CLICK = "click", "Click"

    Reason = InvalidReason

    kind = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.CharField(max_length=20, choices=InvalidReason.choices)
    impression = models.ForeignKey(
        Impression, on_delete=models.PROTECT, null=True, blank=True, related_name="invalid_events"
    )
    click = models.OneToOneField(
        Click, on_delete=models.PROTECT, null=True, blank=True, related_name="invalid_event"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="invalid_events")
    advertiser = models.ForeignKey(
        Advertiser, on_delete=models.PROTECT, null=True, blank=True, related_name="invalid_events"
    )
    viewer_key = models.CharField(max_length=80, blank=True)
    client_hash = models.CharField(max_length=64, blank=True, help_text="Keyed hash of the client's network.")
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["campaign", "created_at"], name="ads_invalid_campaign_time"),
            models.Index(fields=["advertiser", "created_at"], name="ads_invalid_advertiser_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reason} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class GuestViewer(models.Model):
    """A guest session as the tracking endpoints first saw it. New guest sessions are
    cheap, so only the first ADS_GUEST_SESSIONS_PER_IP_HOUR seen from one network in an
    hour are billable (within_cap); the others' events are invalid (guest_unverified)."""

    session_key = models.CharField(max_length=64, unique=True)
    client_hash = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField()
    within_cap = models.BooleanField()

    class Meta:
        indexes = [models.Index(fields=["client_hash", "first_seen_at"], name="ads_guest_client_time")]

    def __str__(self) -> str:
        return f"guest {self.session_key[:8]}… ({'billable' if self.within_cap else 'over the cap'})"


class AdFeedback(models.Model):
    class Kind(models.TextChoices):
        NOT_RELEVANT = "not_relevant", "Not relevant"
        OFFENSIVE = "offensive", "Offensive"
        DISMISSED = "dismissed", "Dismissed"

    impression = models.ForeignKey(Impression, on_delete=models.CASCADE, related_name="feedback")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["impression", "kind"], name="ads_feedback_unique")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.impression_id}"


class _StatBase(models.Model):
    """What a report counts for one campaign in one period (ads.selectors.events_counted
    defines each figure; the roll-up stores exactly that)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    impressions = models.BigIntegerField(default=0)
    invalid_impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    invalid_clicks = models.BigIntegerField(default=0)
    spend_micros = models.BigIntegerField(default=0)
    served = models.BigIntegerField(default=0, help_text="Impressions served in the period.")
    viewable = models.BigIntegerField(default=0, help_text="Of those served in the period, how many became viewable.")
    invalid_by_reason = models.JSONField(default=dict, blank=True, help_text="Invalid events per reason.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class CampaignStatHourly(_StatBase):
    hour = models.DateTimeField(help_text="Start of the hour (UTC).")

    class Meta:
        ordering = ["-hour"]
        constraints = [models.UniqueConstraint(fields=["campaign", "hour"], name="ads_stat_hourly_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} @ {self.hour:%Y-%m-%d %H:00}"


class CampaignStatDaily(_StatBase):
    day = models.DateField()

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["campaign", "day"], name="ads_stat_daily_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} @ {self.day:%Y-%m-%d}"


class MinorConversation(models.Model):
    """A conversation in which the person said they are under 18 (ads.minors): it gets
    no ad for good, also once the statement has left the gate's window. Keyed by the
    conversation's id alone (the assistant app owns conversations; ads never imports
    it); what was said is not kept."""

    conversation_id = models.CharField(max_length=64, unique=True)
    said_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"minor in {self.conversation_id} since {self.said_at:%Y-%m-%d}"
