from __future__ import annotations

import pytest
from django.urls import reverse

from billing.ledger import ledger_credit
from billing.models import LedgerEntry, PlanGrant
from tests.billing.factories import BalanceAccountFactory, SubscriptionFactory


@pytest.mark.parametrize(
    "model", ["plan", "customer", "subscription", "stripeevent", "plangrant", "balanceaccount", "ledgerentry",
              "quotausage", "quotareservation"]
)
def test_every_billing_changelist_renders(client, staff_user, plans, model):
    SubscriptionFactory(plan=plans["plus"])
    client.force_login(staff_user)
    response = client.get(reverse(f"admin:billing_{model}_changelist") + "?q=x")
    assert response.status_code == 200


def test_staff_grant_a_plan_from_the_admin(client, staff_user, user, plans):
    client.force_login(staff_user)
    response = client.post(reverse("admin:billing_plangrant_add"), {
        "user": user.pk, "plan": plans["pro"].pk, "reason": "press", "starts_at_0": "2026-01-01",
        "starts_at_1": "00:00:00", "ends_at_0": "", "ends_at_1": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = PlanGrant.objects.get()
    assert (grant.user, grant.plan.slug, grant.granted_by) == (user, "pro", staff_user)

    client.post(reverse("admin:billing_plangrant_changelist"),
                {"action": "revoke", "_selected_action": [grant.pk]})
    grant.refresh_from_db()
    assert grant.revoked_at is not None


def test_ledger_entries_are_read_only_in_the_admin(client, staff_user, db):
    account = BalanceAccountFactory()
    entry = ledger_credit(account_id=account.pk, amount_micros=3_000_000, reference="t:1")
    client.force_login(staff_user)
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.count() == 1
    page = client.get(reverse("admin:billing_balanceaccount_changelist")).content.decode()
    assert "$3.00" in page
