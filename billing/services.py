"""Staff plan grants. Entitlements live in billing.entitlements and are re-exported here
(the import path the other apps use: `from billing.services import entitlements_for, Entitlements`).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from billing.entitlements import Entitlements, entitlements_for
from billing.models import Plan, PlanGrant
from billing.stripe_api import BillingNotConfigured

__all__ = [
    "BillingNotConfigured",
    "Entitlements",
    "entitlements_for",
    "plan_grant_create",
    "plan_grant_revoke",
]


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
