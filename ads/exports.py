"""What the ads app contributes to a user's data export: their advertiser memberships.
(Ads are contextual: Lhama keeps no ad profile of anyone.)"""

from __future__ import annotations

from ads.models import AdvertiserMembership
from ads.services.delivery import ad_events_anonymise


def user_export(*, user) -> dict:
    memberships = AdvertiserMembership.objects.filter(user=user).select_related("advertiser").order_by("created_at")
    return {
        "advertiser_memberships": [
            {
                "advertiser": m.advertiser.name,
                "role": m.role,
                "since": m.created_at.isoformat(),
            }
            for m in memberships
        ]
    }


def user_on_delete(*, user) -> None:
    """In the account deletion's transaction: the account's ad events are anonymised, not
    deleted (the advertisers' reports and bills keep them)."""
    ad_events_anonymise(user_id=user.pk)
