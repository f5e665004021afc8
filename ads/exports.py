"""What the ads app contributes to a user's data export: their advertiser memberships.
(Ads are contextual: Lhama keeps no ad profile of anyone.)"""

from __future__ import annotations

from ads.models import AdvertiserMembership


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
