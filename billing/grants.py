"""Plans given by staff (press, beta testers, support gestures): works with or without Stripe.

billing.entitlements counts an active grant like a subscription (the better plan wins).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from billing.models import Plan, PlanGrant


def plan_grant_create(
    *, user, plan: Plan, granted_by=None, reason: str = "", ends_at: datetime | None = None
) -> PlanGrant:
    return PlanGrant.objects.create(
        user=user, plan=plan, granted_by=granted_by, reason=reason, starts_at=timezone.now(), ends_at=ends_at
    )


def plan_grant_revoke(*, grant: PlanGrant) -> PlanGrant:
    if grant.revoked_at is None:
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at"])
    return grant
