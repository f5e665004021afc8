"""Reads of the ads app: memberships and roles, advertisers, campaigns, creatives, the
performance reports, and what a viewer was shown (frequency caps). Every lookup the
dashboard makes is scoped to one advertiser: the views never look an object up by id
alone."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from ads.models import (
    Advertiser,
    AdvertiserIdentityRevision,
    AdvertiserMembership,
    Campaign,
    CampaignStatDaily,
    Click,
    Creative,
    Impression,
    InvalidEvent,
    InvalidReason,
)
from billing.public import balance_micros, ledger_payments, ledger_spend_by_day

ROLE_RANK = {
    AdvertiserMembership.Role.VIEWER: 0,
    AdvertiserMembership.Role.MANAGER: 1,
    AdvertiserMembership.Role.OWNER: 2,
}


def membership_allows(*, membership: AdvertiserMembership, role: str) -> bool:
    """Owners can do what managers can, managers what viewers can."""
    return ROLE_RANK[membership.role] >= ROLE_RANK[role]


def memberships_for_user(*, user) -> QuerySet[AdvertiserMembership]:
    return (
        AdvertiserMembership.objects.filter(user=user, advertiser__is_active=True)
        .select_related("advertiser")
        .order_by("advertiser__name", "advertiser_id")
    )


def membership_current(*, user, advertiser_id: int | None) -> AdvertiserMembership | None:
    """The organisation the user chose (kept in the session), else their first one."""
    memberships = memberships_for_user(user=user)
    if advertiser_id is not None:
        chosen = memberships.filter(advertiser_id=advertiser_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def advertiser_get(*, pk: int) -> Advertiser:
    return Advertiser.objects.get(pk=pk)


def advertiser_identity_latest(*, advertiser: Advertiser) -> AdvertiserIdentityRevision | None:
    """The latest change of the name or "paid by" while it waits for review, or once it was
    rejected (the advertiser sees why); None when approved or withdrawn."""
    latest = advertiser.identity_revisions.order_by("-submitted_at", "-id").first()
    shown = (AdvertiserIdentityRevision.Status.PENDING, AdvertiserIdentityRevision.Status.REJECTED)
    return latest if latest is not None and latest.status in shown else None


def advertiser_members(*, advertiser: Advertiser) -> QuerySet[AdvertiserMembership]:
    return advertiser.memberships.select_related("user").order_by("created_at", "id")


def advertiser_balance_micros(*, advertiser: Advertiser) -> int:
    return balance_micros(account_id=advertiser.balance_account_id)


@dataclass(frozen=True)
class BalanceLine:
    """One movement on the balance page: a top-up, a refund or dispute of one, a credit back."""

    at: dt.datetime
    kind: str
    label: str
    amount_micros: int
    balance_after_micros: int
    stripe_reference: str  # the Stripe object it comes from (cs_…, re_…, ch_…, dp_…), or ""
    payment_intent: str
    memo: str


def _stripe_object(reference: str) -> str:
    # References are "stripe:<what>:<Stripe id>[:…]" (billing.webhooks, billing.refunds).
    parts = reference.split(":")
    return parts[2] if len(parts) >= 3 and parts[0] == "stripe" else ""


def advertiser_balance_lines(*, advertiser: Advertiser) -> list[BalanceLine]:
    """Money in and out of the balance other than ad spend, newest first."""
    lines = []
    for entry in ledger_payments(account_id=advertiser.balance_account_id):
        stripe_reference = _stripe_object(entry.reference)
        label = "Top-up" if entry.reference.startswith("stripe:checkout:") else entry.get_kind_display()
        lines.append(
            BalanceLine(
                at=entry.created_at,
                kind=entry.kind,
                label=label,
                amount_micros=entry.amount_micros,
                balance_after_micros=entry.balance_after_micros,
                stripe_reference=stripe_reference,
                payment_intent=entry.stripe_payment_intent,
                memo=entry.memo,
            )
        )
    return lines


def advertiser_spend_by_day(*, advertiser: Advertiser, start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    """Ad spend per UTC day as the ledger has it (the sum of every charge), newest first."""
    return ledger_spend_by_day(account_id=advertiser.balance_account_id, start=start, end=end)


def advertiser_balance_is_low(*, advertiser: Advertiser, balance: int) -> bool:
    return balance < advertiser.low_balance_threshold_micros or advertiser.low_balance_notified_at is not None


def campaigns_for_advertiser(*, advertiser: Advertiser) -> QuerySet[Campaign]:
    return advertiser.campaigns.annotate(
        creatives_total=Count("creatives", distinct=True),
        creatives_approved=Count(
            "creatives", filter=Q(creatives__review_status=Creative.ReviewStatus.APPROVED), distinct=True
        ),
        creatives_rejected=Count(
            "creatives", filter=Q(creatives__review_status=Creative.ReviewStatus.REJECTED), distinct=True
        ),
    ).order_by("-created_at", "-id")


def campaigns_paused_for_balance(*, advertiser: Advertiser) -> list[Campaign]:
    return list(advertiser.campaigns.filter(pause_reason=Campaign.PauseReason.BALANCE).order_by("name", "id"))


def campaign_get(*, advertiser: Advertiser, pk: int) -> Campaign | None:
    return advertiser.campaigns.filter(pk=pk).first()


def creative_get(*, advertiser: Advertiser, pk: int) -> Creative | None:
    return Creative.objects.select_related("campaign").filter(pk=pk, campaign__advertiser=advertiser).first()


# --- performance ----------------------------------------------------------------------
#
# What a report counts, per campaign and period (`events_counted`, the one definition;
# the roll-up stores exactly it):
#   impressions  valid (viewable, billable) impressions, on the day they were acknowledged
#   clicks       valid clicks, on the day they were made
#   spend        what those cost: the same micros the ledger debited for them
#   served       impressions served in the period; viewable: of those, acknowledged viewable
#   invalid      every refused acknowledgement or click (InvalidEvent), by kind and reason
# Today and yesterday (UTC) are read from the raw events, so they are live; earlier days
# from the daily roll-up (docs/ads.md, "Reports").

LIVE_DAYS = 2
COUNTS = ("impressions", "clicks", "spend_micros", "invalid_impressions", "invalid_clicks", "served", "viewable")
INVALID_REASONS = [(value, label) for value, label in InvalidReason.choices if value]


@dataclass(frozen=True)
class Metrics:
    impressions: int = 0
    clicks: int = 0
    spend_micros: int = 0
    invalid_impressions: int = 0
    invalid_clicks: int = 0
    served: int = 0
    viewable: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    # The part of clicks and spend that is CPC campaigns' (read with the campaign's bid
    # type, not stored): a CPM campaign's clicks are free and its spend is impressions'.
    cpc_clicks: int = 0
    cpc_spend_micros: int = 0

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def avg_cpc_micros(self) -> int | None:
        """CPC spend ÷ CPC clicks (docs/ads.md, "Reports"): CPM spend and clicks left out."""
        return round(self.cpc_spend_micros / self.cpc_clicks) if self.cpc_clicks else None

    def as_cpc(self) -> Metrics:
        """These metrics as a CPC campaign's: all its clicks and spend are CPC."""
        return replace(self, cpc_clicks=self.clicks, cpc_spend_micros=self.spend_micros)

    @property
    def ecpm_micros(self) -> int | None:
        return round(self.spend_micros * 1000 / self.impressions) if self.impressions else None

    @property
    def invalid_events(self) -> int:
        return self.invalid_impressions + self.invalid_clicks

    @property
    def viewable_rate(self) -> float | None:
        return self.viewable / self.served if self.served else None

    @property
    def invalid_reasons(self) -> list[tuple[str, str, int]]:
        """(reason, label, count) for every reason, in InvalidReason's order."""
        return [(value, label, self.invalid_by_reason.get(value, 0)) for value, label in INVALID_REASONS]

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in COUNTS)

    def __add__(self, other: Metrics) -> Metrics:
        reasons = dict(self.invalid_by_reason)
        for reason, count in other.invalid_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + count
        return Metrics(
            **{name: getattr(self, name) + getattr(other, name) for name in COUNTS},
            invalid_by_reason=reasons,
            cpc_clicks=self.cpc_clicks + other.cpc_clicks,
            cpc_spend_micros=self.cpc_spend_micros + other.cpc_spend_micros,
        )

    def as_row(self) -> dict:
        return {**{name: getattr(self, name) for name in COUNTS}, "invalid_by_reason": dict(self.invalid_by_reason)}

    @classmethod
    def from_row(cls, row: dict) -> Metrics:
        return cls(
            **{name: row.get(name) or 0 for name in COUNTS}, invalid_by_reason=dict(row.get("invalid_by_reason") or {})
        )


def _metrics_sum(items) -> Metrics:
    total = Metrics()
    for metrics in items:
        total = total + metrics
    return total


def events_counted(
    *, start: dt.datetime, end: dt.datetime, advertiser_id: int | None = None, campaign_id: int | None = None
) -> dict[int, Metrics]:
    """The raw events of [start, end) per campaign (campaigns without any are absent)."""
    scope = {}
    if advertiser_id is not None:
        scope["advertiser_id"] = advertiser_id
    if campaign_id is not None:
        scope["campaign_id"] = campaign_id
    counts: dict[int, dict] = defaultdict(lambda: {"invalid_by_reason": defaultdict(int)})
    # A valid acknowledgement comes within the acknowledgement window of serving, so the
    # served_at bound (the campaign/served_at index) loses none of them.
    earliest_served = start - dt.timedelta(seconds=settings.ADS_IMPRESSION_ACK_WINDOW_S)
    valid_impressions = Impression.objects.filter(
        **scope, is_valid=True, acknowledged_at__gte=start, acknowledged_at__lt=end, served_at__gte=earliest_served
    )
    for row in valid_impressions.values("campaign_id").annotate(n=Count("id"), spend=Sum("cost_micros")):
        counts[row["campaign_id"]]["impressions"] = row["n"]
        counts[row["campaign_id"]]["spend_micros"] = row["spend"] or 0
    served = Impression.objects.filter(**scope, served_at__gte=start, served_at__lt=end)
    for cohort in served.values("campaign_id").annotate(n=Count("id"), viewable=Count("id", filter=Q(is_valid=True))):
        counts[cohort["campaign_id"]].update(served=cohort["n"], viewable=cohort["viewable"])
    click_scope = {("campaign__advertiser_id" if k == "advertiser_id" else k): v for k, v in scope.items()}
    clicks = Click.objects.filter(**click_scope, is_valid=True, clicked_at__gte=start, clicked_at__lt=end)
    for row in clicks.values("campaign_id").annotate(n=Count("id"), spend=Sum("cost_micros")):
        counts[row["campaign_id"]]["clicks"] = row["n"]
        counts[row["campaign_id"]]["spend_micros"] = counts[row["campaign_id"]].get("spend_micros", 0) + (
            row["spend"] or 0
        )
    invalid = InvalidEvent.objects.filter(**scope, campaign__isnull=False, created_at__gte=start, created_at__lt=end)
    for refused in invalid.values("campaign_id", "kind", "reason").annotate(n=Count("id")):
        entry = counts[refused["campaign_id"]]
        name = "invalid_impressions" if refused["kind"] == InvalidEvent.Kind.IMPRESSION else "invalid_clicks"
        entry[name] = entry.get(name, 0) + refused["n"]
        entry["invalid_by_reason"][refused["reason"]] += refused["n"]
    return {campaign: Metrics.from_row(values) for campaign, values in counts.items()}


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def live_days_start(*, today: dt.date | None = None) -> dt.date:
    """The first day read from the raw events rather than the roll-up."""
    return (today or timezone.now().date()) - dt.timedelta(days=LIVE_DAYS - 1)


def _per_day_and_campaign(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None, campaign_id: int | None = None
) -> dict[tuple[dt.date, int], Metrics]:
    today = timezone.now().date()
    live_from = live_days_start(today=today)
    end = min(end or today, today)
    rolled = CampaignStatDaily.objects.filter(campaign__advertiser=advertiser, day__lt=live_from, day__lte=end)
    if campaign_id is not None:
        rolled = rolled.filter(campaign_id=campaign_id)
    if start is not None:
        rolled = rolled.filter(day__gte=start)
    result = {
        (row["day"], row["campaign_id"]): Metrics.from_row(row)
        for row in rolled.values("day", "campaign_id", *COUNTS, "invalid_by_reason")
    }
    day = max(start or live_from, live_from)
    while day <= end:
        day_start, day_end = _day_bounds(day)
        live = events_counted(start=day_start, end=day_end, advertiser_id=advertiser.pk, campaign_id=campaign_id)
        result.update({(day, campaign): metrics for campaign, metrics in live.items()})
        day += dt.timedelta(days=1)
    cpc = set(advertiser.campaigns.filter(bid_type=Campaign.BidType.CPC).values_list("id", flat=True))
    return {key: metrics.as_cpc() if key[1] in cpc else metrics for key, metrics in result.items()}


def performance_totals(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None, campaign_id: int | None = None
) -> Metrics:
    rows = _per_day_and_campaign(advertiser=advertiser, start=start, end=end, campaign_id=campaign_id)
    return _metrics_sum(rows.values())


def performance_daily(
    *, advertiser: Advertiser, start: dt.date, end: dt.date, campaign_id: int | None = None
) -> list[tuple[dt.date, Metrics]]:
    """One entry per day from start to end inclusive; days without events are zeros."""
    by_day: dict[dt.date, Metrics] = defaultdict(Metrics)
    for (day, _), metrics in _per_day_and_campaign(
        advertiser=advertiser, start=start, end=end, campaign_id=campaign_id
    ).items():
        by_day[day] = by_day[day] + metrics
    days = (end - start).days + 1
    return [(day, by_day.get(day, Metrics())) for day in (start + dt.timedelta(days=i) for i in range(days))]


def performance_by_campaign(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None
) -> list[tuple[Campaign, Metrics]]:
    """Every campaign of the advertiser (also those without events in the range)."""
    by_campaign: dict[int, Metrics] = defaultdict(Metrics)
    for (_, campaign_id), metrics in _per_day_and_campaign(advertiser=advertiser, start=start, end=end).items():
        by_campaign[campaign_id] = by_campaign[campaign_id] + metrics
    campaigns = advertiser.campaigns.order_by("name", "id")
    return [(campaign, by_campaign.get(campaign.pk, Metrics())) for campaign in campaigns]


@dataclass(frozen=True)
class PerformanceReport:
    totals: Metrics
    daily: list[tuple[dt.date, Metrics]]
    by_campaign: list[tuple[Campaign, Metrics]]


def performance_report(*, advertiser: Advertiser, start: dt.date, end: dt.date) -> PerformanceReport:
    """The performance page in one pass: totals, one entry per day, every campaign."""
    rows = _per_day_and_campaign(advertiser=advertiser, start=start, end=end)
    by_day: dict[dt.date, Metrics] = defaultdict(Metrics)
    by_campaign: dict[int, Metrics] = defaultdict(Metrics)
    for (day, campaign_id), metrics in rows.items():
        by_day[day] = by_day[day] + metrics
        by_campaign[campaign_id] = by_campaign[campaign_id] + metrics
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return PerformanceReport(
        totals=_metrics_sum(rows.values()),
        daily=[(day, by_day.get(day, Metrics())) for day in days],
        by_campaign=[(c, by_campaign.get(c.pk, Metrics())) for c in advertiser.campaigns.order_by("name", "id")],
    )


def performance_rows_for_export(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None
) -> list[tuple[dt.date, Campaign, Metrics]]:
    """One row per campaign per day with events, ordered by day then campaign name."""
    campaigns = {c.pk: c for c in advertiser.campaigns.all()}
    rows = _per_day_and_campaign(advertiser=advertiser, start=start, end=end)
    result = [(day, campaigns[campaign_id], metrics) for (day, campaign_id), metrics in rows.items() if metrics]
    result.sort(key=lambda r: (r[0], r[1].name.lower(), r[1].pk))
    return result


def stats_updated_at(*, advertiser: Advertiser) -> dt.datetime | None:
    """When the roll-up (the days before the live ones) last ran for this advertiser."""
    return (
        CampaignStatDaily.objects.filter(campaign__advertiser=advertiser)
        .order_by("-updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )


# --- frequency caps ---------------------------------------------------------------

# A card served but not acknowledged yet may still be on its way to the screen, so it
# counts against the caps for this long; after that only cards actually shown count
# (a follow-up answer whose card the reader never scrolled to does not use up the cap).
FREQUENCY_PENDING_S = 120


def frequency_counts_get(*, viewer: str, now: dt.datetime) -> dict[int, tuple[int, int]]:
    """Impressions shown (or just served) to this viewer per campaign: (last hour, last day)."""
    counts: dict[int, tuple[int, int]] = {}
    hour_ago = now - dt.timedelta(hours=1)
    rows = (
        Impression.objects.filter(viewer_key=viewer, served_at__gte=now - dt.timedelta(days=1))
        .filter(Q(acknowledged_at__isnull=False) | Q(served_at__gte=now - dt.timedelta(seconds=FREQUENCY_PENDING_S)))
        .values_list("campaign_id", "served_at")
    )
    for campaign_id, served_at in rows:
        hour, day = counts.get(campaign_id, (0, 0))
        counts[campaign_id] = (hour + (served_at >= hour_ago), day + 1)
    return counts
