"""Dollars (what advertisers type and read) <-> integer micros (what the database keeps)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_DOLLAR = 1_000_000


def dollars_to_micros(amount: Decimal) -> int:
    """Exact for any amount with at most 6 decimal places; forms limit the places first."""
    return int((Decimal(amount) * MICROS_PER_DOLLAR).to_integral_value(rounding=ROUND_HALF_UP))


def micros_to_dollars(micros: int) -> Decimal:
    return Decimal(int(micros)) / MICROS_PER_DOLLAR


def format_usd(micros: int | None, places: int = 2) -> str:
    """'$1,234.56'; negative amounts as '-$1.00'. None (no data) as an em dash."""
    if micros is None:
        return "—"
    value = micros_to_dollars(micros).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{places}f}"
