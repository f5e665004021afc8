from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from billing.ledger import (
    InsufficientBalance,
    LedgerReferenceConflict,
    balance_micros,
    ledger_credit,
    ledger_debit,
)
from billing.models import LedgerEntry
from tests.billing.factories import BalanceAccountFactory


def _entries_summed(account_id: int) -> int:
    """The balance recomputed from every entry, as an audit would."""
    return LedgerEntry.objects.filter(account_id=account_id).aggregate(total=Sum("amount_micros"))["total"] or 0


def test_balance_is_the_sum_of_entries(db):
    account = BalanceAccountFactory()
    ledger_credit(account_id=account.pk, amount_micros=10_000_000, reference="t:1")
    ledger_debit(account_id=account.pk, amount_micros=2_500_000, reference="spend:1", memo="click")
    assert balance_micros(account_id=account.pk) == 7_500_000
    assert list(LedgerEntry.objects.order_by("id").values_list("kind", "amount_micros")) == [
        ("credit", 10_000_000), ("debit", -2_500_000)]


def test_a_debit_below_zero_is_refused_and_writes_nothing(db):
    account = BalanceAccountFactory()
    ledger_credit(account_id=account.pk, amount_micros=1_000_000, reference="t:1")
    with pytest.raises(InsufficientBalance) as caught:
        ledger_debit(account_id=account.pk, amount_micros=1_000_001, reference="spend:1")
    assert (caught.value.balance_micros, caught.value.amount_micros) == (1_000_000, 1_000_001)
    assert LedgerEntry.objects.count() == 1


def test_same_reference_is_idempotent(db):
    account = BalanceAccountFactory()
    first = ledger_credit(account_id=account.pk, amount_micros=5_000_000, reference="stripe:checkout:cs_1")
    again = ledger_credit(account_id=account.pk, amount_micros=5_000_000, reference="stripe:checkout:cs_1")
    assert first.pk == again.pk
    assert balance_micros(account_id=account.pk) == 5_000_000
    with pytest.raises(LedgerReferenceConflict):
        ledger_credit(account_id=account.pk, amount_micros=6_000_000, reference="stripe:checkout:cs_1")


@pytest.mark.parametrize("amount", [0, -5])
def test_amounts_must_be_positive(db, amount):
    account = BalanceAccountFactory()
    with pytest.raises(ValueError):
        ledger_credit(account_id=account.pk, amount_micros=amount, reference="x")
    with pytest.raises(ValueError):
        ledger_debit(account_id=account.pk, amount_micros=amount, reference="y")


def test_the_database_refuses_a_debit_with_a_positive_amount(db):
    account = BalanceAccountFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(account=account, kind="debit", amount_micros=5, balance_after_micros=5, reference="bad")


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_overspend():
    account = BalanceAccountFactory()
    ledger_credit(account_id=account.pk, amount_micros=10_000_000, reference="t:1")

    def spend(i: int) -> bool:
        try:
            ledger_debit(account_id=account.pk, amount_micros=1_000_000, reference=f"spend:{i}")
            return True
        except InsufficientBalance:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(spend, range(30)))
    assert outcomes.count(True) == 10
    assert balance_micros(account_id=account.pk) == 0
    assert _entries_summed(account.pk) == 0


def test_running_balance_equals_the_sum_of_the_entries(db):
    account = BalanceAccountFactory()
    ledger_credit(account_id=account.pk, amount_micros=5_000_000, reference="r:1")
    ledger_debit(account_id=account.pk, amount_micros=1_250_000, reference="r:2")
    ledger_credit(account_id=account.pk, amount_micros=750_000, reference="r:3")
    ledger_debit(account_id=account.pk, amount_micros=1_250_000, reference="r:2")  # replay: no movement
    entries = list(LedgerEntry.objects.filter(account=account).order_by("id").values_list("amount_micros", "balance_after_micros"))
    assert entries == [(5_000_000, 5_000_000), (-1_250_000, 3_750_000), (750_000, 4_500_000)]
    assert balance_micros(account_id=account.pk) == _entries_summed(account.pk) == 4_500_000
