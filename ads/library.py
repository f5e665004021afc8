"""Reads of the public ad library (/ads/library/): every creative that has served in
the last year, with who ran it, who paid, what it said, where it led, when it served,
how often (in ranges) and the targeting it used.

In the spirit of the EU Digital Services Act, article 39 (a repository of the ads a
platform showed, kept for a year after the last time each was shown), but public to
everyone. Nothing about any viewer is read here: an entry is built from the
creative, its campaign and advertiser, and aggregates of its impressions (first and
last day served, a count that is only ever shown as a range).

Retention is a filter, not a purge: `library_entries` leaves out creatives whose
last impression is older than ADS_LIBRARY_RETENTION_DAYS, so nothing has to run
for an entry to leave the library (the impressions themselves are kept for audit
and billing by their own rules).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from ads.models import Campaign, CampaignKeyword, Creative

# Upper bounds of the impression ranges shown; past the last one, "1,000,000+".
IMPRESSION_RANGES = (1_000, 10_000, 100_000, 1_000_000)


def impressions_range(count: int) -> str:
    """The range a count is shown as: "<1,000", "1,000–10,000", … , "1,000,000+"."""
    lower = 0
    for upper in IMPRESSION_RANGES:
        if count < upper:
            return f"<{upper:,}" if lower == 0 else f"{lower:,}–{upper:,}"
        lower = upper
    return f"{lower:,}+"


def _cutoff(now: dt.datetime | None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(days=settings.ADS_LIBRARY_RETENTION_DAYS)


def library_entries(*, q: str = "", advertiser: str = "", now: dt.datetime | None = None) -> QuerySet[Creative]:
    """Creatives that have served and last served within the retention period, most
    recently served first, annotated with first_served, last_served and
    impressions_counted (shown impressions; never a viewer). `advertiser` matches the
    advertiser's name or who paid; `q` the headline, text or question."""
    queryset = (
        Creative.objects.filter(impressions__isnull=False)
        .select_related("campaign__advertiser")
        .prefetch_related("campaign__keywords")
        .annotate(
            first_served=Min("impressions__served_at"),
            last_served=Max("impressions__served_at"),
            impressions_counted=Count("impressions", filter=Q(impressions__is_valid=True)),
        )
        .filter(last_served__gte=_cutoff(now))
    )
    if advertiser.strip():
        name = advertiser.strip()
        queryset = queryset.filter(
            Q(campaign__advertiser__name__icontains=name) | Q(campaign__advertiser__paid_by__icontains=name)
        )
    if q.strip():
        text = q.strip()
        queryset = queryset.filter(Q(headline__icontains=text) | Q(text__icontains=text) | Q(question__icontains=text))
    return queryset.order_by("-last_served", "-id")


def library_entry_get(*, creative_id: int, now: dt.datetime | None = None) -> Creative:
    """One entry of the library; Creative.DoesNotExist when it never served or left it."""
    return library_entries(now=now).get(pk=creative_id)


@dataclass(frozen=True)
class Targeting:
    keywords: list[str]  # as the advertiser wrote them: "gpu rental", "\"gpu rental\"", "[gpu rental]"
    negative_keywords: list[str]
    context_hints: str
    languages: list[str]  # empty: any language


def _keyword_line(keyword: CampaignKeyword) -> str:
    if keyword.match_type == CampaignKeyword.MatchType.EXACT:
        return f"[{keyword.text}]"
    if keyword.match_type == CampaignKeyword.MatchType.PHRASE:
        return f'"{keyword.text}"'
    return keyword.text


def campaign_targeting(*, campaign: Campaign) -> Targeting:
    """The targeting the campaign uses now (the library shows the current settings)."""
    keywords = list(campaign.keywords.all())
    return Targeting(
        keywords=[_keyword_line(k) for k in keywords if not k.is_negative],
        negative_keywords=[_keyword_line(k) for k in keywords if k.is_negative],
        context_hints=campaign.context_hints,
        languages=[campaign.language] if campaign.language else [],
    )


def landing_domain(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def library_entry_as_dict(*, creative: Creative) -> dict:
    """The public form of one entry (the JSON endpoint's and the pages' data). Only the
    fields listed here leave the library; none says anything about a viewer."""
    campaign = creative.campaign
    advertiser = campaign.advertiser
    targeting = campaign_targeting(campaign=campaign)
    return {
        "id": creative.pk,
        "url": reverse("ads:library_entry", args=[creative.pk]),
        "json_url": reverse("ads:library_entry_json", args=[creative.pk]),
        "advertiser": advertiser.name,
        "paid_by": advertiser.display_paid_by,
        "headline": creative.headline,
        "text": creative.text,
        "question": creative.question,
        "display_domain": creative.display_domain,
        "landing_domain": landing_domain(creative.landing_url),
        "first_served": creative.first_served.date().isoformat(),  # type: ignore[attr-defined]
        "last_served": creative.last_served.date().isoformat(),  # type: ignore[attr-defined]
        "impressions": impressions_range(creative.impressions_counted),  # type: ignore[attr-defined]
        "targeting": {
            "keywords": targeting.keywords,
            "negative_keywords": targeting.negative_keywords,
            "context_hints": targeting.context_hints,
            "languages": targeting.languages,
        },
    }
