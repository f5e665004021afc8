"""Views of the advertiser dashboard: thin wrappers over forms, selectors and services.

Access: every page below the landing page needs a membership of an active advertiser;
objects are looked up within the current advertiser only, so another organisation's
ids answer 404. Roles: viewers read, managers also edit campaigns, owners also manage
members and the balance.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ads import selectors
from ads.dashboard.forms import (
    AdvertiserForm,
    CampaignForm,
    ConversationPreviewForm,
    CreativeForm,
    DateRangeForm,
    MemberInviteForm,
    TopUpForm,
)
from ads.dashboard.money import format_usd
from ads.models import AdvertiserMembership, Campaign, Creative
from ads.services import campaigns, decision, review
from billing.public import BillingNotConfigured, stripe_configured, topup_checkout_create

SESSION_ADVERTISER = "ads_advertiser_id"
Role = AdvertiserMembership.Role


def advertiser_required(role: str = Role.VIEWER) -> Callable:
    """Log in first; without a membership go create an organisation; too small a role is 403."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            membership = selectors.membership_current(
                user=request.user, advertiser_id=request.session.get(SESSION_ADVERTISER)
            )
            if membership is None:
                messages.info(request, "Create your advertiser organisation first.")
                return redirect("ads:dashboard:org_create")
            if not selectors.membership_allows(membership=membership, role=role):
                raise PermissionDenied(
                    f"This needs the {Role(role).label.lower()} role in {membership.advertiser.name}."
                )
            request.membership = membership  # type: ignore[attr-defined]
            request.advertiser = membership.advertiser  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _context(request: HttpRequest, tab: str, **extra) -> dict:
    membership = request.membership  # type: ignore[attr-defined]
    return {
        "advertiser": membership.advertiser,
        "membership": membership,
        "can_edit": selectors.membership_allows(membership=membership, role=Role.MANAGER),
        "is_owner": membership.role == Role.OWNER,
        "tab": tab,
        **extra,
    }


def _campaign_or_404(request: HttpRequest, pk: int) -> Campaign:
    campaign = selectors.campaign_get(advertiser=request.advertiser, pk=pk)  # type: ignore[attr-defined]
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


# --- landing and organisation ----------------------------------------------------------------


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and selectors.memberships_for_user(user=request.user).exists():
        return redirect("ads:dashboard:overview")
    return render(request, "ads/landing.html")


@login_required
@require_http_methods(["GET", "POST"])
def org_create(request: HttpRequest) -> HttpResponse:
    form = AdvertiserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        advertiser = campaigns.advertiser_create(owner=request.user, **form.cleaned_data)
        request.session[SESSION_ADVERTISER] = advertiser.pk
        messages.success(request, f"{advertiser.name} is ready. Top up your balance, then create a campaign.")
        return redirect("ads:dashboard:overview")
    memberships = selectors.memberships_for_user(user=request.user)
    return render(request, "ads/org_create.html", {"form": form, "memberships": memberships})


@advertiser_required()
@require_POST
def org_switch(request: HttpRequest, advertiser_id: int) -> HttpResponse:
    if not selectors.memberships_for_user(user=request.user).filter(advertiser_id=advertiser_id).exists():
        raise Http404("No such organisation.")
    request.session[SESSION_ADVERTISER] = advertiser_id
    return redirect("ads:dashboard:overview")


def _overview(request: HttpRequest, *, topup_form=None, invite_form=None, status: int = 200) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    balance = selectors.advertiser_balance_micros(advertiser=advertiser)
    today = timezone.now().date()
    week_start = today - dt.timedelta(days=6)
    advertiser_campaigns = list(selectors.campaigns_for_advertiser(advertiser=advertiser))
    return render(
        request,
        "ads/overview.html",
        _context(
            request,
            "overview",
            balance_micros=balance,
            balance_is_low=selectors.advertiser_balance_is_low(advertiser=advertiser, balance=balance),
            billing_configured=stripe_configured(),
            topup_form=topup_form or TopUpForm(),
            invite_form=invite_form or MemberInviteForm(advertiser=advertiser),
            members=selectors.advertiser_members(advertiser=advertiser),
            memberships=selectors.memberships_for_user(user=request.user),
            week=selectors.performance_totals(advertiser=advertiser, start=week_start, end=today),
            week_start=week_start,
            campaigns_active=sum(1 for c in advertiser_campaigns if c.status == Campaign.Status.ACTIVE),
            campaigns_total=len(advertiser_campaigns),
            creatives_rejected=sum(c.creatives_rejected for c in advertiser_campaigns),
            paused_by_balance=[c for c in advertiser_campaigns if c.pause_reason == Campaign.PauseReason.BALANCE],
        ),
        status=status,
    )


@advertiser_required()
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    if request.GET.get("topup") == "success":
        messages.success(request, "Thank you — your payment is being confirmed; the balance updates in a moment.")
    elif request.GET.get("topup") == "cancelled":
        messages.info(request, "Top-up cancelled; nothing was charged.")
    return _overview(request)


@advertiser_required(Role.OWNER)
@require_http_methods(["GET", "POST"])
def org_edit(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    # The form gets its own copy: a ModelForm writes typed values into its instance while cleaning.
    form = AdvertiserForm(request.POST or None, instance=selectors.advertiser_get(pk=advertiser.pk))
    if request.method == "POST" and form.is_valid():
        campaigns.advertiser_update(advertiser=advertiser, **form.cleaned_data)
        messages.success(request, "Organisation details saved.")
        return redirect("ads:dashboard:overview")
    status = 400 if request.method == "POST" else 200
    return render(request, "ads/org_edit.html", _context(request, "overview", form=form), status=status)


@advertiser_required(Role.OWNER)
@require_POST
def topup(request: HttpRequest) -> HttpResponse:
    form = TopUpForm(request.POST)
    if not form.is_valid():
        return _overview(request, topup_form=form, status=400)
    overview_url = settings.SITE_URL + reverse("ads:dashboard:overview")
    try:
        checkout_url = topup_checkout_create(
            account_id=request.advertiser.balance_account_id,  # type: ignore[attr-defined]
            amount_micros=form.cleaned_data["amount"],
            user=request.user,
            success_url=overview_url + "?topup=success",
            cancel_url=overview_url + "?topup=cancelled",
        )
    except BillingNotConfigured:
        form.add_error(
            None,
            "Online payments are not configured on this server, so top-ups are unavailable. "
            "Contact the Lhama team to credit your balance.",
        )
        return _overview(request, topup_form=form, status=503)
    return redirect(checkout_url)


@advertiser_required(Role.OWNER)
@require_POST
def member_invite(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    form = MemberInviteForm(request.POST, advertiser=advertiser)
    if not form.is_valid():
        return _overview(request, invite_form=form, status=400)
    membership = campaigns.advertiser_member_add(
        advertiser=advertiser, user=form.invited_user, role=form.cleaned_data["role"]
    )
    messages.success(
        request, f"{membership.user.email} is now a {membership.get_role_display().lower()} of {advertiser.name}."
    )
    return redirect(reverse("ads:dashboard:overview") + "#members")


# --- campaigns ---------------------------------------------------------------------------------


@advertiser_required()
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    advertiser_campaigns = list(selectors.campaigns_for_advertiser(advertiser=advertiser))
    totals = dict(selectors.performance_by_campaign(advertiser=advertiser, start=None, end=None))
    rows = [(campaign, totals.get(campaign, selectors.Metrics())) for campaign in advertiser_campaigns]
    return render(request, "ads/campaign_list.html", _context(request, "campaigns", rows=rows))


@advertiser_required(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    form = CampaignForm(request.POST or None)
    creative_form = CreativeForm(request.POST or None, prefix="creative")
    if request.method == "POST" and form.is_valid() and creative_form.is_valid():
        try:
            with transaction.atomic():
                campaign = campaigns.campaign_create(
                    advertiser=advertiser,
                    keywords=form.all_keywords(),
                    status=Campaign.Status.DRAFT,
                    **form.campaign_fields(),
                )
                review.creative_create(campaign=campaign, **creative_form.creative_fields())
        except campaigns.CampaignInvalid as exc:
            form.add_service_errors(exc.errors)
        except review.CreativeInvalid as exc:
            creative_form.add_service_errors(exc.errors)
        else:
            messages.success(
                request,
                f"Campaign “{campaign.name}” created as a draft. Its creative is waiting for review; launch the campaign when you are ready.",
            )
            return redirect("ads:dashboard:campaign_detail", pk=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "ads/campaign_form.html",
        _context(request, "campaigns", form=form, creative_form=creative_form, campaign=None),
        status=status,
    )


@advertiser_required()
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    campaign = _campaign_or_404(request, pk)
    today = timezone.now().date()
    start = today - dt.timedelta(days=29)
    daily = selectors.performance_daily(advertiser=advertiser, start=start, end=today, campaign_id=campaign.pk)
    keywords = list(campaign.keywords.all())
    return render(
        request,
        "ads/campaign_detail.html",
        _context(
            request,
            "campaigns",
            campaign=campaign,
            creatives=campaign.creatives.order_by("-created_at", "-id"),
            keywords=[k for k in keywords if not k.is_negative],
            negative_keywords=[k for k in keywords if k.is_negative],
            lifetime=selectors.performance_totals(advertiser=advertiser, start=None, end=None, campaign_id=campaign.pk),
            chart_rows=_chart_rows(daily),
            chart_start=start,
        ),
    )


@advertiser_required(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    # The form gets its own copy: a ModelForm writes typed values into its instance while cleaning.
    form = CampaignForm(request.POST or None, instance=_campaign_or_404(request, pk))
    if request.method == "POST" and form.is_valid():
        try:
            campaigns.campaign_update(campaign=campaign, keywords=form.all_keywords(), **form.campaign_fields())
        except campaigns.CampaignInvalid as exc:
            form.add_service_errors(exc.errors)
            campaign.refresh_from_db()
        else:
            messages.success(request, "Campaign saved.")
            return redirect("ads:dashboard:campaign_detail", pk=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "ads/campaign_form.html",
        _context(request, "campaigns", form=form, creative_form=None, campaign=campaign),
        status=status,
    )


def _campaign_action(request: HttpRequest, pk: int, action: Callable, done: str) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    try:
        campaign = action(campaign=campaign)
    except campaigns.CampaignStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done.format(name=campaign.name))
    return redirect("ads:dashboard:campaign_detail", pk=campaign.pk)


@advertiser_required(Role.MANAGER)
@require_POST
def campaign_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _campaign_action(request, pk, campaigns.campaign_pause, "“{name}” is paused.")


@advertiser_required(Role.MANAGER)
@require_POST
def campaign_activate(request: HttpRequest, pk: int) -> HttpResponse:
    return _campaign_action(request, pk, campaigns.campaign_activate, "“{name}” is active.")


@advertiser_required(Role.MANAGER)
@require_POST
def campaign_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    copy = campaigns.campaign_duplicate(campaign=campaign)
    messages.success(request, f"Duplicated as “{copy.name}”, a draft; its creatives go through review again.")
    return redirect("ads:dashboard:campaign_detail", pk=copy.pk)


# --- creatives ---------------------------------------------------------------------------------


@advertiser_required(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def creative_create(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    form = CreativeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            review.creative_create(campaign=campaign, **form.creative_fields())
        except review.CreativeInvalid as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, "Creative submitted for review.")
            return redirect("ads:dashboard:campaign_detail", pk=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "ads/creative_form.html",
        _context(request, "campaigns", form=form, campaign=campaign, creative=None),
        status=status,
    )


@advertiser_required(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def creative_edit(request: HttpRequest, pk: int) -> HttpResponse:
    creative = selectors.creative_get(advertiser=request.advertiser, pk=pk)  # type: ignore[attr-defined]
    if creative is None:
        raise Http404("No such creative.")
    # Not bound to the instance: ads.services.review compares the stored creative with the changes.
    form = CreativeForm(request.POST or None, initial=model_to_dict(creative, fields=CreativeForm.Meta.fields))
    if request.method == "POST" and form.is_valid():
        try:
            updated = review.creative_update(creative=creative, **form.creative_fields())
        except review.CreativeInvalid as exc:
            form.add_service_errors(exc.errors)
        else:
            if updated.review_status == Creative.ReviewStatus.PENDING:
                messages.success(request, "Creative saved. It is waiting for review.")
            else:
                messages.success(request, "Creative saved.")
            return redirect("ads:dashboard:campaign_detail", pk=creative.campaign_id)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "ads/creative_form.html",
        _context(request, "campaigns", form=form, campaign=creative.campaign, creative=creative),
        status=status,
    )


@advertiser_required(Role.MANAGER)
@require_POST
def creative_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    creative = selectors.creative_get(advertiser=request.advertiser, pk=pk)  # type: ignore[attr-defined]
    if creative is None:
        raise Http404("No such creative.")
    creative = review.creative_set_active(creative=creative, is_active=not creative.is_active)
    messages.success(request, f"“{creative.headline}” is {'on' if creative.is_active else 'switched off'}.")
    return redirect("ads:dashboard:campaign_detail", pk=creative.campaign_id)


# --- performance -------------------------------------------------------------------------------


def _date_range(request: HttpRequest) -> tuple[DateRangeForm, dt.date, dt.date]:
    today = timezone.now().date()
    start, end = today - dt.timedelta(days=29), today
    if not request.GET:
        return DateRangeForm(initial={"start": start, "end": end}), start, end
    form = DateRangeForm(request.GET)
    if form.is_valid():
        start = form.cleaned_data.get("start") or start
        end = form.cleaned_data.get("end") or end
        if end < start:  # only an end given, before the default start
            start = end - dt.timedelta(days=29)
    return form, start, end


def _chart_rows(daily) -> list[dict]:
    return [
        {"day": day.isoformat(), "impressions": m.impressions, "clicks": m.clicks, "spend_micros": m.spend_micros}
        for day, m in daily
    ]


@advertiser_required()
@require_GET
def performance(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    form, start, end = _date_range(request)
    daily = selectors.performance_daily(advertiser=advertiser, start=start, end=end)
    today = timezone.now().date()
    presets = [
        ("Last 7 days", today - dt.timedelta(days=6), today),
        ("Last 30 days", today - dt.timedelta(days=29), today),
        ("Last 90 days", today - dt.timedelta(days=89), today),
    ]
    return render(
        request,
        "ads/performance.html",
        _context(
            request,
            "performance",
            form=form,
            start=start,
            end=end,
            presets=presets,
            totals=selectors.performance_totals(advertiser=advertiser, start=start, end=end),
            by_campaign=selectors.performance_by_campaign(advertiser=advertiser, start=start, end=end),
            daily=daily,
            chart_rows=_chart_rows(daily),
            updated_at=selectors.stats_updated_at(advertiser=advertiser),
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
    context = _context(request, "preview", form=form, result=result)
    if request.headers.get("HX-Request"):
        # htmx swaps only 2xx answers: the panel comes back with the form's errors in it.
        return render(request, "ads/preview.html#panel", context)
    status = 400 if request.method == "POST" and not form.is_valid() else 200
    return render(request, "ads/preview.html", context, status=status)
