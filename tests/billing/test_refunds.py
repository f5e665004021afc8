"""Top-up refunds and disputes from Stripe reverse the credit in the one ledger.

Every event is signed exactly as Stripe signs it and goes through the webhook view and
the processing task, as in production. Duplicates, replays under another event id and
out-of-order deliveries change nothing twice; a reversal may take the balance below
zero (ad spend never does), which pauses the advertiser's campaigns until a top-up.
"""

from __future__ import annotations

import itertools

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from ads.models import AdvertiserMembership, Campaign
from ads.services.delivery import campaign_charge
from billing.ledger import balance_micros, ledger_debit
from billing.models import LedgerEntry, StripeEvent
from tests.ads.factories import AdvertiserFactory, CampaignFactory, MembershipFactory
from tests.billing import stripe_events as se
from tests.billing.conftest import post_event
from tests.billing.factories import BalanceAccountFactory

pytestmark = pytest.mark.django_db
T0 = 1_790_000_000
_seq = itertools.count(1)


@pytest.fixture
def deliver(client, webhook_secret, django_capture_on_commit_callbacks):
    """POST a signed event and run what it scheduled after commit (the task, then the balance hook)."""

    def _deliver(event: dict):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_event(client, event)
        assert response.status_code == 200, response.content
        return response

    return _deliver


def topup_event(account, *, cents: int, payment_intent: str, session_id: str | None = None, at: int = T0) -> dict:
    session = se.checkout_session(
        session_id=session_id or f"cs_topup_{next(_seq)}",
        mode="payment",
        amount_total=cents,
        metadata={"kind": "topup", "balance_account_id": str(account.pk)},
    )
    session["payment_intent"] = payment_intent
    return se.event("checkout.session.completed", session, created=at)


def charge(*, payment_intent: str, amount: int, amount_refunded: int, charge_id: str = "ch_1", refunds=None) -> dict:
    obj = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "captured": True,
        "currency": "usd",
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded == amount,
        "status": "succeeded",
        "metadata": {},
    }
    if refunds is not None:
        obj["refunds"] = {
            "object": "list",
            "data": [
                {"id": rid, "object": "refund", "amount": cents, "charge": charge_id, "created": T0 + i,
                 "payment_intent": payment_intent, "status": "succeeded"}
                for i, (rid, cents) in enumerate(refunds)
            ],
            "has_more": False,
            "total_count": len(refunds),
        }
    return obj


def refunded(payment_intent: str, *, amount: int, amount_refunded: int, at: int, **kwargs) -> dict:
    return se.event(
        "charge.refunded",
        charge(payment_intent=payment_intent, amount=amount, amount_refunded=amount_refunded, **kwargs),
        created=at,
    )


def dispute_event(type_: str, payment_intent: str, *, amount: int, status: str, at: int, dispute_id="dp_1") -> dict:
    obj = {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "charge": "ch_1",
        "currency": "usd",
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": status,
        "created": T0,
        "metadata": {},
    }
    return se.event(type_, obj, created=at)


def entries(account) -> list[tuple[str, int, str]]:
    return list(
        LedgerEntry.objects.filter(account=account).order_by("id").values_list("kind", "amount_micros", "reference")
    )


@pytest.fixture
def account(db):
    return BalanceAccountFactory()


# --- refunds --------------------------------------------------------------------------------------


def test_a_full_refund_reverses_the_top_up(deliver, account):
    deliver(topup_event(account, cents=5000, payment_intent="pi_full", session_id="cs_full"))
    assert balance_micros(account_id=account.pk) == 50_000_000
    deliver(refunded("pi_full", amount=5000, amount_refunded=5000, at=T0 + 60))
    assert entries(account) == [
        ("credit", 50_000_000, "stripe:checkout:cs_full"),
        ("refund", -50_000_000, "stripe:charge:ch_1:refunded:5000"),
    ]
    assert balance_micros(account_id=account.pk) == 0
    assert LedgerEntry.objects.get(kind="refund").stripe_payment_intent == "pi_full"


def test_partial_refunds_reverse_only_the_increase_of_the_cumulative_amount(deliver, account):
    deliver(topup_event(account, cents=5000, payment_intent="pi_part"))
    deliver(refunded("pi_part", amount=5000, amount_refunded=1000, at=T0 + 60))
    assert balance_micros(account_id=account.pk) == 40_000_000
    deliver(refunded("pi_part", amount=5000, amount_refunded=2500, at=T0 + 120))
    assert balance_micros(account_id=account.pk) == 25_000_000
    assert [e[1:] for e in entries(account)[1:]] == [
        (-10_000_000, "stripe:charge:ch_1:refunded:1000"),
        (-15_000_000, "stripe:charge:ch_1:refunded:2500"),
    ]


def test_a_duplicate_and_a_replay_under_another_event_id_change_nothing(deliver, client, account):
    deliver(topup_event(account, cents=5000, payment_intent="pi_dup"))
    event = refunded("pi_dup", amount=5000, amount_refunded=2000, at=T0 + 60)
    deliver(event)
    again = deliver(event)
    assert again.content == b"duplicate"
    # The same state of the charge, sent again as a new event (Stripe retries, or a resend).
    deliver(refunded("pi_dup", amount=5000, amount_refunded=2000, at=T0 + 61))
    assert balance_micros(account_id=account.pk) == 30_000_000
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert StripeEvent.objects.filter(type="charge.refunded").count() == 2


def test_out_of_order_refund_events_reverse_the_latest_cumulative_amount_once(deliver, account):
    deliver(topup_event(account, cents=5000, payment_intent="pi_ooo"))
    later = refunded("pi_ooo", amount=5000, amount_refunded=3000, at=T0 + 120)
    earlier = refunded("pi_ooo", amount=5000, amount_refunded=1000, at=T0 + 60)
    deliver(later)
    deliver(earlier)
    assert balance_micros(account_id=account.pk) == 20_000_000
    assert StripeEvent.objects.get(event_id=earlier["id"]).result.startswith("nothing to reverse")


def test_listed_refunds_are_reversed_once_each_by_refund_id(deliver, account):
    deliver(topup_event(account, cents=5000, payment_intent="pi_ids"))
    deliver(refunded("pi_ids", amount=5000, amount_refunded=1000, refunds=[("re_a", 1000)], at=T0 + 60))
    # Delivered out of order: a later state listing both refunds, then the first state again.
    both = refunded("pi_ids", amount=5000, amount_refunded=3500, refunds=[("re_a", 1000), ("re_b", 2500)], at=T0 + 90)
    deliver(both)
    deliver(refunded("pi_ids", amount=5000, amount_refunded=1000, refunds=[("re_a", 1000)], at=T0 + 61))
    assert [e[1:] for e in entries(account)[1:]] == [
        (-10_000_000, "stripe:refund:re_a"),
        (-25_000_000, "stripe:refund:re_b"),
    ]
    assert balance_micros(account_id=account.pk) == 15_000_000


def test_a_refund_that_arrives_before_the_top_up_is_applied_when_the_top_up_is_credited(deliver, account):
    deliver(refunded("pi_early", amount=2000, amount_refunded=500, at=T0 + 60))
    assert entries(account) == []
    assert StripeEvent.objects.get(type="charge.refunded").result.startswith("waiting: no top-up credited")
    deliver(topup_event(account, cents=2000, payment_intent="pi_early", at=T0))
    assert balance_micros(account_id=account.pk) == 15_000_000
    assert [e[0] for e in entries(account)] == ["credit", "refund"]


def test_a_refund_of_a_charge_that_is_no_top_up_is_ignored(deliver, account):
    deliver(refunded("pi_subscription_invoice", amount=999, amount_refunded=999, at=T0))
    assert LedgerEntry.objects.count() == 0


# --- disputes -------------------------------------------------------------------------------------


def test_a_dispute_reverses_the_amount_and_winning_it_credits_it_back(deliver, account):
    deliver(topup_event(account, cents=4000, payment_intent="pi_won"))
    deliver(dispute_event("charge.dispute.created", "pi_won", amount=4000, status="needs_response", at=T0 + 60))
    assert balance_micros(account_id=account.pk) == 0
    deliver(dispute_event("charge.dispute.closed", "pi_won", amount=4000, status="won", at=T0 + 600))
    assert [e[1:] for e in entries(account)] == [
        (40_000_000, entries(account)[0][2]),
        (-40_000_000, "stripe:dispute:dp_1"),
        (40_000_000, "stripe:dispute:dp_1:won"),
    ]
    assert [e[0] for e in entries(account)] == ["credit", "dispute", "dispute_won"]
    assert balance_micros(account_id=account.pk) == 40_000_000


def test_a_lost_dispute_changes_nothing_more(deliver, account):
    deliver(topup_event(account, cents=4000, payment_intent="pi_lost"))
    deliver(dispute_event("charge.dispute.created", "pi_lost", amount=1500, status="needs_response", at=T0 + 60))
    deliver(dispute_event("charge.dispute.closed", "pi_lost", amount=1500, status="lost", at=T0 + 600))
    assert [e[0] for e in entries(account)] == ["credit", "dispute"]
    assert balance_micros(account_id=account.pk) == 25_000_000


def test_a_won_dispute_whose_closing_arrives_first_nets_to_zero(deliver, account):
    deliver(topup_event(account, cents=4000, payment_intent="pi_rev"))
    deliver(dispute_event("charge.dispute.closed", "pi_rev", amount=4000, status="won", at=T0 + 600))
    deliver(dispute_event("charge.dispute.created", "pi_rev", amount=4000, status="needs_response", at=T0 + 60))
    assert [e[0] for e in entries(account)] == ["credit", "dispute", "dispute_won"]
    assert balance_micros(account_id=account.pk) == 40_000_000


def test_every_order_and_duplication_of_the_events_gives_the_same_ledger(client, webhook_secret, account,
                                                                       django_capture_on_commit_callbacks):
    events = [
        topup_event(account, cents=6000, payment_intent="pi_all", session_id="cs_all"),
        refunded("pi_all", amount=6000, amount_refunded=1000, at=T0 + 10, charge_id="ch_all"),
        refunded("pi_all", amount=6000, amount_refunded=2500, at=T0 + 20, charge_id="ch_all"),
        dispute_event("charge.dispute.created", "pi_all", amount=3500, status="needs_response", at=T0 + 30),
        dispute_event("charge.dispute.closed", "pi_all", amount=3500, status="lost", at=T0 + 40),
    ]
    outcomes = set()
    for order in itertools.permutations(range(len(events))):
        LedgerEntry.objects.all().delete()
        StripeEvent.objects.all().delete()
        for i in [*order, order[0], order[-1]]:  # and two duplicates
            with django_capture_on_commit_callbacks(execute=True):
                post_event(client, events[i])
        by_kind = {}
        for kind, micros, _ in entries(account):
            by_kind[kind] = by_kind.get(kind, 0) + micros
        outcomes.add((balance_micros(account_id=account.pk), tuple(sorted(by_kind.items()))))
    # The refund entries may be one or two (the increase each delivery brings), never more money.
    assert outcomes == {(0, (("credit", 60_000_000), ("dispute", -35_000_000), ("refund", -25_000_000)))}


# --- below zero, pausing and resuming ---------------------------------------------------------------


@pytest.fixture
def advertiser(account):
    advertiser = AdvertiserFactory(balance_account=account)
    CampaignFactory(advertiser=advertiser, name="Running", status=Campaign.Status.ACTIVE)
    CampaignFactory(advertiser=advertiser, name="Draft", status=Campaign.Status.DRAFT)
    return advertiser


def statuses(advertiser) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.pause_reason) for c in advertiser.campaigns.all()}


def test_a_refund_of_spent_money_takes_the_balance_below_zero_and_pauses_the_campaigns(deliver, advertiser, account):
    deliver(topup_event(account, cents=5000, payment_intent="pi_spent"))
    ledger_debit(account_id=account.pk, amount_micros=12_000_000, reference="ads:click:spent", memo="Ads")
    deliver(refunded("pi_spent", amount=5000, amount_refunded=5000, at=T0 + 60))
    assert balance_micros(account_id=account.pk) == -12_000_000
    assert statuses(advertiser) == {"Running": ("paused", "balance"), "Draft": ("draft", "")}


def test_ad_spend_never_goes_below_zero_while_the_balance_is_negative(deliver, advertiser, account, django_capture_on_commit_callbacks):
    deliver(topup_event(account, cents=1000, payment_intent="pi_neg"))
    ledger_debit(account_id=account.pk, amount_micros=4_000_000, reference="ads:click:neg", memo="Ads")
    deliver(refunded("pi_neg", amount=1000, amount_refunded=1000, at=T0 + 60))
    campaign = advertiser.campaigns.get(name="Running")
    with django_capture_on_commit_callbacks(execute=True):
        charged = campaign_charge(campaign_id=campaign.pk, amount_micros=500_000, reference="ads:click:more", now=timezone.now())
    assert charged == 0
    assert balance_micros(account_id=account.pk) == -4_000_000
    assert not LedgerEntry.objects.filter(reference="ads:click:more").exists()


def test_a_top_up_that_covers_the_debt_resumes_the_campaigns_and_one_that_does_not_keeps_them_paused(
    deliver, advertiser, account
):
    deliver(topup_event(account, cents=5000, payment_intent="pi_debt"))
    ledger_debit(account_id=account.pk, amount_micros=20_000_000, reference="ads:click:debt", memo="Ads")
    deliver(refunded("pi_debt", amount=5000, amount_refunded=5000, at=T0 + 60))
    assert balance_micros(account_id=account.pk) == -20_000_000
    deliver(topup_event(account, cents=1000, payment_intent="pi_small", at=T0 + 120))
    assert balance_micros(account_id=account.pk) == -10_000_000
    assert statuses(advertiser)["Running"] == ("paused", "balance")
    deliver(topup_event(account, cents=2500, payment_intent="pi_enough", at=T0 + 180))
    assert balance_micros(account_id=account.pk) == 15_000_000
    assert statuses(advertiser) == {"Running": ("active", ""), "Draft": ("draft", "")}


def test_the_database_keeps_debits_at_or_above_zero_but_lets_a_reversal_below_it(account):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(account=account, kind="debit", amount_micros=-1, balance_after_micros=-1,
                                   reference="ads:click:raw")
    LedgerEntry.objects.create(account=account, kind="refund", amount_micros=-1, balance_after_micros=-1,
                               reference="stripe:refund:re_raw")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(account=account, kind="refund", amount_micros=1, balance_after_micros=0,
                                   reference="stripe:refund:re_positive")


# --- the balance page ---------------------------------------------------------------------------------


def test_the_balance_page_lists_top_ups_refunds_and_disputes_with_their_stripe_references(
    deliver, client, advertiser, account, user
):
    deliver(topup_event(account, cents=5000, payment_intent="pi_page", session_id="cs_page"))
    ledger_debit(account_id=account.pk, amount_micros=1_234_567, reference="ads:click:page", memo="Ads")
    deliver(refunded("pi_page", amount=5000, amount_refunded=1000, refunds=[("re_page", 1000)], at=T0 + 60))
    deliver(dispute_event("charge.dispute.created", "pi_page", amount=4000, status="needs_response", at=T0 + 90,
                          dispute_id="dp_page"))
    MembershipFactory(user=user, advertiser=advertiser, role=AdvertiserMembership.Role.VIEWER)
    client.force_login(user)
    response = client.get(reverse("ads:dashboard:balance"))
    assert response.status_code == 200
    lines = [(line.label, line.amount_micros, line.stripe_reference, line.payment_intent)
             for line in response.context["lines"]]
    assert lines == [
        ("Dispute", -40_000_000, "dp_page", "pi_page"),
        ("Refund", -10_000_000, "re_page", "pi_page"),
        ("Top-up", 50_000_000, "cs_page", "pi_page"),
    ]
    html = response.content.decode()
    assert "<code>dp_page</code>" in html and "<code>re_page</code>" in html and "<code>cs_page</code>" in html
    assert "$-1.23" not in html and "-$1.23" in html  # balance now: 50 - 10 - 40 - 1.234567
    assert [micros for _, micros in response.context["spend_by_day"]] == [1_234_567]
    assert "Campaigns are paused until a top-up" in html


# --- concurrency -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_refund_events_processed_at_once_by_many_workers_reverse_the_final_amount_once():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from billing.ledger import ledger_credit
    from billing.webhooks import stripe_event_process

    account = BalanceAccountFactory()
    ledger_credit(account_id=account.pk, amount_micros=50_000_000, reference="stripe:checkout:cs_race",
                  payment_intent="pi_race")
    # Every partial refund so far as its own event, each delivered twice, all at once.
    events = [refunded("pi_race", amount=5000, amount_refunded=cents, at=T0 + cents, charge_id="ch_race")
              for cents in range(200, 4200, 200)]
    rows = [
        StripeEvent.objects.create(event_id=f"{event['id']}-{copy}", type=event["type"], created=timezone.now(),
                                   payload=event)
        for event in events for copy in (1, 2)
    ]
    barrier = threading.Barrier(len(rows))

    def work(pk: int) -> str:
        try:
            barrier.wait(timeout=10)
            return stripe_event_process(event_pk=pk)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        results = list(pool.map(work, [row.pk for row in rows]))
    assert len(results) == 40
    refunds_total = -sum(LedgerEntry.objects.filter(kind="refund").values_list("amount_micros", flat=True))
    assert refunds_total == 40_000_000
    assert balance_micros(account_id=account.pk) == 10_000_000
    assert StripeEvent.objects.filter(processed_at__isnull=True).count() == 0
