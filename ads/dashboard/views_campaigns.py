"""Dashboard pages of campaigns and their creatives: list, create, detail, edit,
pause, launch or resume, duplicate; creatives created, edited, switched on or off.
Thin wrappers over forms, selectors and services; access rules in access.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib import messages
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ads import selectors
from ads.dashboard.access import Role, advertiser_required, campaign_or_404, page_context
from ads.dashboard.forms import CampaignForm, CreativeForm
from ads.dashboard.views_reports import chart_rows
from ads.models import Campaign, Creative
from ads.services import campaigns, review

# --- campaigns ---------------------------------------------------------------------------------


@advertiser_required()
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    advertiser_campaigns = list(selectors.campaigns_for_advertiser(advertiser=advertiser))
    totals = dict(selectors.performance_by_campaign(advertiser=advertiser, start=None, end=None))
    rows = [(campaign, totals.get(campaign, selectors.Metrics())) for campaign in advertiser_campaigns]
    return render(request, "ads/campaign_list.html", page_context(request, "campaigns", rows=rows))


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
        page_context(request, "campaigns", form=form, creative_form=creative_form, campaign=None),
        status=status,
    )


@advertiser_required()
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    campaign = campaign_or_404(request, pk)
    today = timezone.now().date()
    start = today - dt.timedelta(days=29)
    daily = selectors.performance_daily(advertiser=advertiser, start=start, end=today, campaign_id=campaign.pk)
    keywords = list(campaign.keywords.all())
    return render(
        request,
        "ads/campaign_detail.html",
        page_context(
            request,
            "campaigns",
            campaign=campaign,
            creatives=campaign.creatives.order_by("-created_at", "-id"),
            keywords=[k for k in keywords if not k.is_negative],
            negative_keywords=[k for k in keywords if k.is_negative],
            lifetime=selectors.performance_totals(advertiser=advertiser, start=None, end=None, campaign_id=campaign.pk),
            chart_rows=chart_rows(daily),
            chart_start=start,
        ),
    )


@advertiser_required(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(request, pk)
    # The form gets its own copy: a ModelForm writes typed values into its instance while cleaning.
    form = CampaignForm(request.POST or None, instance=campaign_or_404(request, pk))
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
        page_context(request, "campaigns", form=form, creative_form=None, campaign=campaign),
        status=status,
    )


def _campaign_action(request: HttpRequest, pk: int, action: Callable, done: str) -> HttpResponse:
    campaign = campaign_or_404(request, pk)
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
    campaign = campaign_or_404(request, pk)
    copy = campaigns.campaign_duplicate(campaign=campaign)
    messages.success(request, f"Duplicated as “{copy.name}”, a draft; its creatives go through review again.")
    return redirect("ads:dashboard:campaign_detail", pk=copy.pk)


# --- creatives ---------------------------------------------------------------------------------


@advertiser_required(Role.MANAGER)
@require_http_methods(["GET", "POST"])
def creative_create(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = campaign_or_404(request, pk)
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
        page_context(request, "campaigns", form=form, campaign=campaign, creative=None),
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
        page_context(request, "campaigns", form=form, campaign=creative.campaign, creative=creative),
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
