"""Dashboard pages of the organisation: the landing page, creating, editing and
switching organisations, the overview (balance, top-up, members, the week).
Thin wrappers over forms, selectors and services; access rules in access.py.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ads import selectors
from ads.dashboard.access import SESSION_ADVERTISER, Role, advertiser_required, page_context
from ads.dashboard.forms import AdvertiserForm, MemberInviteForm, TopUpForm
from ads.models import AdvertiserIdentityRevision, Campaign
from ads.services import campaigns, review
from billing.public import BillingNotConfigured, stripe_configured, topup_checkout_create

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
        page_context(
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
            today=selectors.performance_totals(advertiser=advertiser, start=today, end=today),
            week_start=week_start,
            campaigns_active=sum(1 for c in advertiser_campaigns if c.status == Campaign.Status.ACTIVE),
            campaigns_total=len(advertiser_campaigns),
            creatives_rejected=sum(c.creatives_rejected for c in advertiser_campaigns),
            paused_by_balance=[c for c in advertiser_campaigns if c.pause_reason == Campaign.PauseReason.BALANCE],
            identity_change=selectors.advertiser_identity_latest(advertiser=advertiser),
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


@advertiser_required()
@require_GET
def balance(request: HttpRequest) -> HttpResponse:
    """The balance and what moved it: top-ups, refunds and disputes (with their Stripe
    references), and ad spend per day as the ledger has it."""
    advertiser = request.advertiser  # type: ignore[attr-defined]
    balance_now = selectors.advertiser_balance_micros(advertiser=advertiser)
    today = timezone.now().date()
    start = today - dt.timedelta(days=29)
    return render(
        request,
        "ads/balance.html",
        page_context(
            request,
            "balance",
            balance_micros=balance_now,
            lines=selectors.advertiser_balance_lines(advertiser=advertiser),
            spend_by_day=selectors.advertiser_spend_by_day(advertiser=advertiser, start=start, end=today),
            spend_start=start,
            paused_by_balance=selectors.campaigns_paused_for_balance(advertiser=advertiser),
        ),
    )


@advertiser_required(Role.OWNER)
@require_http_methods(["GET", "POST"])
def org_edit(request: HttpRequest) -> HttpResponse:
    advertiser = request.advertiser  # type: ignore[attr-defined]
    change = selectors.advertiser_identity_latest(advertiser=advertiser)
    # The form shows the change waiting for review, if any. It gets its own copy of the
    # advertiser: a ModelForm writes typed values into its instance while cleaning.
    waiting = change is not None and change.status == AdvertiserIdentityRevision.Status.PENDING
    initial = {"name": change.name, "paid_by": change.paid_by} if waiting else None
    form = AdvertiserForm(request.POST or None, instance=selectors.advertiser_get(pk=advertiser.pk), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            pending = campaigns.advertiser_update(advertiser=advertiser, submitted_by=request.user, **form.cleaned_data)
        except review.AdvertiserIdentityInvalid as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(field, error)
        else:
            if pending is None:
                messages.success(request, "Organisation details saved.")
            else:
                messages.success(
                    request,
                    f"Details saved. The new name and “paid by” wait for review; your cards show "
                    f"“{advertiser.name}” until they are approved.",
                )
            return redirect("ads:dashboard:overview")
    status = 400 if request.method == "POST" else 200
    context = page_context(request, "overview", form=form, identity_change=change)
    return render(request, "ads/org_edit.html", context, status=status)


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
    email, role = form.cleaned_data["email"], form.cleaned_data["role"]
    campaigns.advertiser_invitation_send(advertiser=advertiser, email=email, role=role, invited_by=request.user)
    messages.success(
        request,
        f"We sent an invitation to {email}. They become a {Role(role).label.lower()} of {advertiser.name} once they"
        " accept it, signed in with that address.",
    )
    return redirect(reverse("ads:dashboard:overview") + "#members")


@login_required
@require_http_methods(["GET", "POST"])
def member_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The invited person's page: what they are invited to, and a button to accept it."""
    try:
        invitation = campaigns.advertiser_invitation_read(token=token)
        if invitation.email != (request.user.email or "").lower():
            raise campaigns.InvitationInvalid("for another e-mail")
    except campaigns.InvitationInvalid:
        return render(request, "ads/member_accept.html", {"invitation": None}, status=400)
    if request.method == "POST":
        membership = campaigns.advertiser_invitation_accept(token=token, user=request.user)
        request.session[SESSION_ADVERTISER] = membership.advertiser_id
        messages.success(
            request, f"You are a {membership.get_role_display().lower()} of {membership.advertiser.name}."
        )
        return redirect("ads:dashboard:overview")
    return render(request, "ads/member_accept.html", {"invitation": invitation, "role": Role(invitation.role).label})
