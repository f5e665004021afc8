"""Dashboard pages of results: performance over a date range, its CSV export, and the
preview of what the ad engine would decide for a conversation.
Thin wrappers over forms, selectors and services; access rules in access.py.
"""

from __future__ import annotations

import csv
import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from ads import selectors
from ads.dashboard.access import advertiser_required, page_context
from ads.dashboard.forms import ConversationPreviewForm, DateRangeForm
from ads.dashboard.money import format_usd
from ads.services import decision

# --- performance -------------------------------------------------------------------------------


def _date_range(request: HttpRequest) -> tuple[DateRangeForm, dt.date, dt.date]:
    """The report's range from ?start=&end= (DateRangeForm bounds it); behind a form error
    the page shows the default range, never one the error was about."""
    form = DateRangeForm(request.GET or None, today=timezone.now().date())
    start, end = form.default_range()
    if not form.is_bound:
        form.initial = {"start": start, "end": end}
    elif form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    return form, start, end


def chart_rows(daily) -> list[dict]:
    """Per-day figures as the chart script reads them."""
    return [
        {"day": day.isoformat(), "impressions": m.impressions, "clicks": m.clicks, "spend_micros": m.spend_micros}
        for day, m in daily
    ]


def _invalid_rows(rows, reasons: list[tuple[str, str]]) -> list[tuple]:
    """(key, [(reason, count) per shown reason], total) for each row with invalid events."""
    return [
        (key, [(reason, m.invalid_by_reason.get(reason, 0)) for reason, _ in reasons], m.invalid_events)
        for key, m in rows
        if m.invalid_events
    ]


@advertiser_required()
@require_GET
def performance(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    form, start, end = _date_range(request)
    report = selectors.performance_report(advertiser=advertiser, start=start, end=end)
    totals, daily = report.totals, report.daily
    # Invalid traffic: a column per reason seen in the period, a row per campaign or day that had any.
    reasons = [(value, label) for value, label, count in totals.invalid_reasons if count]
    today = timezone.now().date()
    presets = [
        ("Last 7 days", today - dt.timedelta(days=6), today),
        ("Last 30 days", today - dt.timedelta(days=29), today),
        ("Last 90 days", today - dt.timedelta(days=89), today),
    ]
    return render(
        request,
        "ads/performance.html",
        page_context(
            request,
            "performance",
            form=form,
            start=start,
            end=end,
            presets=presets,
            totals=totals,
            by_campaign=report.by_campaign,
            daily=daily,
            chart_rows=chart_rows(daily),
            updated_at=selectors.stats_updated_at(advertiser=advertiser),
            live_from=selectors.live_days_start(),
            invalid_reasons=reasons,
            invalid_by_campaign=_invalid_rows(report.by_campaign, reasons),
            invalid_by_day=_invalid_rows(daily, reasons),
        ),
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


CSV_HEADER = [
    "date",
    "campaign_id",
    "campaign",
    "impressions",
    "clicks",
    "ctr_percent",
    "spend_usd",
    "avg_cpc_usd",
    "ecpm_usd",
    "invalid_impressions",
    "invalid_clicks",
    "served",
    "viewable",
    "viewable_rate_percent",
    *(f"invalid_{reason}" for reason, _ in selectors.INVALID_REASONS),
]


def _csv_safe(text: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ is data, not a formula (OWASP).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _decimal(micros: int | None, places: int) -> str:
    # Exact dollars for spreadsheets: 6 places are whole micros.
    return "" if micros is None else format_usd(micros, places).replace("$", "").replace(",", "")


@advertiser_required()
@require_GET
def performance_csv(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    form, start, end = _date_range(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            " ".join(form.errors.get("__all__", ["Invalid dates."])), status=400, content_type="text/plain"
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lhama-ads-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for day, campaign, m in selectors.performance_rows_for_export(advertiser=advertiser, start=start, end=end):
        writer.writerow(
            [
                day.isoformat(),
                campaign.pk,
                _csv_safe(campaign.name),
                m.impressions,
                m.clicks,
                "" if m.ctr is None else f"{m.ctr * 100:.2f}",
                _decimal(m.spend_micros, 6),
                _decimal(m.avg_cpc_micros, 6),
                _decimal(m.ecpm_micros, 6),
                m.invalid_impressions,
                m.invalid_clicks,
                m.served,
                m.viewable,
                "" if m.viewable_rate is None else f"{m.viewable_rate * 100:.2f}",
                *(count for _, _, count in m.invalid_reasons),
            ]
        )
    return response


# --- preview a conversation -------------------------------------------------------------------------

EXCLUSION_TEXT = {
    "": "Took part in the auction",
    "negative_keyword": "A negative keyword matched",
    "below_relevance_floor": "Not relevant enough",
    "language": "Different language",
    "not_started": "Not started yet",
    "ended": "Ended",
    "below_reserve": "Bid below the reserve price",
    "pacing": "Held back by pacing (daily budget)",
    "frequency_cap": "Frequency cap reached",
}


@advertiser_required()
@require_http_methods(["GET", "POST"])
def preview(request: HttpRequest) -> HttpResponse:
    """What the ad engine would decide for a conversation, among this advertiser's own ads only."""
    advertiser = request.advertiser  # type: ignore[attr-defined]
    form = ConversationPreviewForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        result = decision.ad_preview(
            text=form.cleaned_data["text"], advertiser_id=advertiser.pk, language=form.cleaned_data["language"]
        )
        for candidate in result.get("candidates", []):
            candidate["excluded_text"] = EXCLUSION_TEXT.get(candidate["excluded"], candidate["excluded"])
    context = page_context(request, "preview", form=form, result=result)
    if request.headers.get("HX-Request"):
        # htmx swaps only 2xx answers: the panel comes back with the form's errors in it.
        return render(request, "ads/preview.html#panel", context)
    status = 400 if request.method == "POST" and not form.is_valid() else 200
    return render(request, "ads/preview.html", context, status=status)
