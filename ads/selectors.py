"""Reads of the ads app: memberships and roles, advertisers, campaigns, creatives, the
performance reports, and what a viewer was shown (frequency caps). Every lookup the
dashboard makes is scoped to one advertiser: the views never look an object up by id
alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum

from ads.models import Advertiser, AdvertiserMembership, Campaign, CampaignStatDaily, Creative, Impression
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


@dataclass(frozen=True)
class Metrics:
    impressions: int = 0
    clicks: int = 0
    spend_micros: int = 0
    invalid_impressions: int = 0
    invalid_clicks: int = 0

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def avg_cpc_micros(self) -> int | None:
        return round(self.spend_micros / self.clicks) if self.clicks else None

    @property
    def ecpm_micros(self) -> int | None:
        return round(self.spend_micros * 1000 / self.impressions) if self.impressions else None

    @property
    def invalid_events(self) -> int:
        return self.invalid_impressions + self.invalid_clicks

    @classmethod
    def from_row(cls, row: dict) -> Metrics:
        return cls(
            impressions=row.get("impressions") or 0,
            clicks=row.get("clicks") or 0,
            spend_micros=row.get("spend_micros") or 0,
            invalid_impressions=row.get("invalid_impressions") or 0,
            invalid_clicks=row.get("invalid_clicks") or 0,
        )


_SUMS = {
    "impressions": Sum("impressions"),
    "clicks": Sum("clicks"),
    "spend_micros": Sum("spend_micros"),
    "invalid_impressions": Sum("invalid_impressions"),
    "invalid_clicks": Sum("invalid_clicks"),
}


def _stats(*, advertiser: Advertiser, start: dt.date | None, end: dt.date | None, campaign_id: int | None = None):
    rows = CampaignStatDaily.objects.filter(campaign__advertiser=advertiser)
    if campaign_id is not None:
        rows = rows.filter(campaign_id=campaign_id)
    if start is not None:
        rows = rows.filter(day__gte=start)
    if end is not None:
        rows = rows.filter(day__lte=end)
    return rows


def performance_totals(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None, campaign_id: int | None = None
) -> Metrics:
    return Metrics.from_row(
        _stats(advertiser=advertiser, start=start, end=end, campaign_id=campaign_id).aggregate(**_SUMS)
    )


def performance_daily(
    *, advertiser: Advertiser, start: dt.date, end: dt.date, campaign_id: int | None = None
) -> list[tuple[dt.date, Metrics]]:
    """One entry per day from start to end inclusive; days without events are zeros."""
    by_day = {
        row["day"]: Metrics.from_row(row)
        for row in _stats(advertiser=advertiser, start=start, end=end, campaign_id=campaign_id)
        .values("day")
        .annotate(**_SUMS)
        .order_by("day")
    }
    days = (end - start).days + 1
    return [(day, by_day.get(day, Metrics())) for day in (start + dt.timedelta(days=i) for i in range(days))]


def performance_by_campaign(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None
) -> list[tuple[Campaign, Metrics]]:
    """Every campaign of the advertiser (also those without events in the range)."""
    by_campaign = {
        row["campaign_id"]: Metrics.from_row(row)
        for row in _stats(advertiser=advertiser, start=start, end=end).values("campaign_id").annotate(**_SUMS)
    }
    campaigns = advertiser.campaigns.order_by("name", "id")
    return [(campaign, by_campaign.get(campaign.pk, Metrics())) for campaign in campaigns]


def performance_rows_for_export(
    *, advertiser: Advertiser, start: dt.date | None, end: dt.date | None
) -> list[tuple[dt.date, Campaign, Metrics]]:
    """One row per campaign per day with events, ordered by day then campaign name."""
    campaigns = {c.pk: c for c in advertiser.campaigns.all()}
    rows = (
        _stats(advertiser=advertiser, start=start, end=end)
        .values("day", "campaign_id")
        .annotate(**_SUMS)
        .order_by("day", "campaign_id")
    )
    result = [(row["day"], campaigns[row["campaign_id"]], Metrics.from_row(row)) for row in rows]
    result.sort(key=lambda r: (r[0], r[1].name.lower(), r[1].pk))
    return result


def stats_updated_at(*, advertiser: Advertiser) -> dt.datetime | None:
    latest = (
        CampaignStatDaily.objects.filter(campaign__advertiser=advertiser)
        .order_by("-updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )
    return latest


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
