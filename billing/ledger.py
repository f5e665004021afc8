"""The advertiser balance ledger: append-only entries, balance derived by SUM.

Every movement has a unique `reference`, so repeating one (a webhook replay, a
retried task) returns the entry already written instead of moving money twice.
Writers lock the account row, so concurrent debits can never take a balance below 0.
"""

from __future__ import annotations

from django.db import transaction

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
    latest = LedgerEntry.objects.filter(account_id=account_id).order_by("-id").values_list("balance_after_micros", flat=True).first()
    return latest or 0


def ledger_reference_exists(*, reference: str) -> bool:
    """Whether a movement with this reference (its idempotency key) was already written."""
    return LedgerEntry.objects.filter(reference=reference).exists()


def _entry_write(*, account_id: int, signed_micros: int, kind: str, reference: str, memo: str) -> LedgerEntry:
    if not reference:
        raise ValueError("A ledger entry needs a reference (its idempotency key).")
    with transaction.atomic():
        # The account row is the lock: every writer of this account queues here.
        BalanceAccount.objects.select_for_update().get(pk=account_id)
        existing = LedgerEntry.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.account_id != account_id or existing.amount_micros != signed_micros:
                raise LedgerReferenceConflict(f"Reference {reference!r} was already used for another movement.")
            return existing
        balance = balance_micros(account_id=account_id)
        if balance + signed_micros < 0:
            raise InsufficientBalance(account_id=account_id, balance_micros=balance, amount_micros=-signed_micros)
        return LedgerEntry.objects.create(
            account_id=account_id,
            kind=kind,
            amount_micros=signed_micros,
            balance_after_micros=balance + signed_micros,
            reference=reference,
            memo=memo[:200],
        )


def ledger_credit(*, account_id: int, amount_micros: int, reference: str, memo: str = "") -> LedgerEntry:
    if amount_micros <= 0:
        raise ValueError("A credit must be a positive amount of micros.")
    return _entry_write(
        account_id=account_id, signed_micros=amount_micros, kind=LedgerEntry.Kind.CREDIT, reference=reference, memo=memo
    )


def ledger_debit(*, account_id: int, amount_micros: int, reference: str, memo: str = "") -> LedgerEntry:
    if amount_micros <= 0:
        raise ValueError("A debit must be a positive amount of micros.")
    return _entry_write(
        account_id=account_id, signed_micros=-amount_micros, kind=LedgerEntry.Kind.DEBIT, reference=reference, memo=memo
    )

