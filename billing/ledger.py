"""The advertiser balance ledger: append-only entries, balance derived by SUM.

Every movement has a unique `reference`, so repeating one (a webhook replay, a
retried task) returns the entry already written instead of moving money twice.
Writers lock the account row, so concurrent debits can never take a balance below 0.

Ad spend (`ledger_debit`) never takes a balance below zero. A reversal of a top-up
(`ledger_reverse`: Stripe refunded it, or the card holder disputed it) may: that money
has left already, and a negative balance is what the advertiser owes; the database
holds the same rule (only debits are kept at or above zero).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils.module_loading import import_string

from billing.models import BalanceAccount, LedgerEntry


class InsufficientBalance(Exception):
    def __init__(self, *, account_id: int, balance_micros: int, amount_micros: int) -> None:
        super().__init__(
            f"Balance account {account_id} has {balance_micros} micros; a debit of {amount_micros} would go below zero."
        )
        self.account_id = account_id
        self.balance_micros = balance_micros
        self.amount_micros = amount_micros


class LedgerReferenceConflict(Exception):
    """The reference was already used for a different movement."""


def balance_account_create(*, name: str, currency: str = "usd") -> BalanceAccount:
    return BalanceAccount.objects.create(name=name, currency=currency)


def balance_micros(*, account_id: int) -> int:
    latest = (
        LedgerEntry.objects.filter(account_id=account_id)
        .order_by("-id")
        .values_list("balance_after_micros", flat=True)
        .first()
    )
    return latest or 0


def ledger_reference_exists(*, reference: str) -> bool:
    """Whether a movement with this reference (its idempotency key) was already written."""
    return LedgerEntry.objects.filter(reference=reference).exists()


def balance_account_lock(*, account_id: int) -> BalanceAccount:
    """Lock the account row (inside a transaction): every writer of this account queues here."""
    return BalanceAccount.objects.select_for_update().get(pk=account_id)


def _entry_write(
    *,
    account_id: int,
    signed_micros: int,
    kind: str,
    reference: str,
    memo: str,
    payment_intent: str = "",
    may_go_negative: bool = False,
) -> LedgerEntry:
    if not reference:
        raise ValueError("A ledger entry needs a reference (its idempotency key).")
    with transaction.atomic():
        balance_account_lock(account_id=account_id)
        existing = LedgerEntry.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.account_id != account_id or existing.amount_micros != signed_micros or existing.kind != kind:
                raise LedgerReferenceConflict(f"Reference {reference!r} was already used for another movement.")
            return existing
        balance = balance_micros(account_id=account_id)
        if signed_micros < 0 and balance + signed_micros < 0 and not may_go_negative:
            raise InsufficientBalance(account_id=account_id, balance_micros=balance, amount_micros=-signed_micros)
        return LedgerEntry.objects.create(
            account_id=account_id,
            kind=kind,
            amount_micros=signed_micros,
            balance_after_micros=balance + signed_micros,
            reference=reference,
            memo=memo[:200],
            stripe_payment_intent=payment_intent,
        )


def ledger_credit(
    *,
    account_id: int,
    amount_micros: int,
    reference: str,
    memo: str = "",
    kind: str = LedgerEntry.Kind.CREDIT,
    payment_intent: str = "",
) -> LedgerEntry:
    """Money in: a top-up (`payment_intent` names the Stripe payment), a staff credit, or a
    won dispute's amount credited back (`kind="dispute_won"`)."""
    if amount_micros <= 0:
        raise ValueError("A credit must be a positive amount of micros.")
    if kind not in LedgerEntry.POSITIVE_KINDS:
        raise ValueError(f"A credit is one of {', '.join(LedgerEntry.POSITIVE_KINDS)}, not {kind!r}.")
    return _entry_write(
        account_id=account_id,
        signed_micros=amount_micros,
        kind=kind,
        reference=reference,
        memo=memo,
        payment_intent=payment_intent,
    )


def ledger_debit(*, account_id: int, amount_micros: int, reference: str, memo: str = "") -> LedgerEntry:
    """Ad spend: never below zero (InsufficientBalance, and nothing is written)."""
    if amount_micros <= 0:
        raise ValueError("A debit must be a positive amount of micros.")
    return _entry_write(
        account_id=account_id, signed_micros=-amount_micros, kind=LedgerEntry.Kind.DEBIT, reference=reference, memo=memo
    )


def ledger_reverse(
    *, account_id: int, amount_micros: int, kind: str, reference: str, payment_intent: str, memo: str = ""
) -> LedgerEntry:
    """Take back (part of) a top-up that Stripe refunded (`kind="refund"`) or that was
    disputed (`kind="dispute"`). May take the balance below zero."""
    if amount_micros <= 0:
        raise ValueError("A reversal must be a positive amount of micros.")
    if kind not in (LedgerEntry.Kind.REFUND, LedgerEntry.Kind.DISPUTE):
        raise ValueError(f"A reversal is a refund or a dispute, not {kind!r}.")
    return _entry_write(
        account_id=account_id,
        signed_micros=-amount_micros,
        kind=kind,
        reference=reference,
        memo=memo,
        payment_intent=payment_intent,
        may_go_negative=True,
    )


# --- reads ---------------------------------------------------------------------------


def ledger_payments(*, account_id: int, limit: int = 200) -> list[LedgerEntry]:
    """Money in and out other than ad spend (top-ups, refunds, disputes, credits back), newest first."""
    return list(
        LedgerEntry.objects.filter(account_id=account_id).exclude(kind=LedgerEntry.Kind.DEBIT).order_by("-id")[:limit]
    )


def ledger_spend_by_day(*, account_id: int, start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    """Ad spend (positive micros) per UTC day from start to end inclusive, days with spend only, newest first."""
    rows = (
        LedgerEntry.objects.filter(
            account_id=account_id, kind=LedgerEntry.Kind.DEBIT, created_at__date__gte=start, created_at__date__lte=end
        )
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(total=Sum("amount_micros"))
        .order_by("-day")
    )
    return [(row["day"], -row["total"]) for row in rows]


def balance_changed_notify(*, account_id: int) -> None:
    """After commit, tell the owner of the account (ads, through the callable that
    settings.BILLING_BALANCE_CHANGED names) that money moved outside ad spend: a top-up,
    a refund, a dispute. Billing imports no other app; the settings wire them."""
    path = settings.BILLING_BALANCE_CHANGED
    if path:
        transaction.on_commit(lambda: import_string(path)(account_id=account_id), robust=True)
