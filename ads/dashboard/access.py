"""Access to the advertiser dashboard: every page below the landing page needs a
membership of an active advertiser; objects are looked up within the current
advertiser only, so another organisation's ids answer 404. Roles: viewers read,
managers also edit campaigns, owners also manage members and the balance.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from ads import selectors
from ads.models import AdvertiserMembership, Campaign

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


def page_context(request: HttpRequest, tab: str, **extra) -> dict:
    membership = request.membership  # type: ignore[attr-defined]
    return {
        "advertiser": membership.advertiser,
        "membership": membership,
        "can_edit": selectors.membership_allows(membership=membership, role=Role.MANAGER),
        "is_owner": membership.role == Role.OWNER,
        "tab": tab,
        **extra,
    }


def campaign_or_404(request: HttpRequest, pk: int) -> Campaign:
    campaign = selectors.campaign_get(advertiser=request.advertiser, pk=pk)  # type: ignore[attr-defined]
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign
