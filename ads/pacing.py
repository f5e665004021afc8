"""Budget pacing and frequency caps: pure functions of the state and a clock, so they
can be tested over simulated days.

Even pacing allows spend up to the daily budget times the fraction of the (UTC) day
elapsed, plus a slack of a few bids so that a campaign is not frozen by the event
that is in flight; ASAP pacing allows spend up to the daily budget at once. Both stop
at the lifetime budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

EVEN_SLACK_FRACTION = 0.02  # of the daily budget


def day_fraction(now: datetime) -> float:
    midnight = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    return min(1.0, max(0.0, (now - midnight).total_seconds() / 86400.0))


@dataclass(frozen=True)
class SpendState:
    pacing: str  # "even" | "asap"
    daily_budget_micros: int
    lifetime_budget_micros: int
    spent_today_micros: int
    spent_micros: int
    max_cost_micros: int  # the most one event can cost (CPC: the bid; CPM: bid / 1000)


def spend_allowance_micros(state: SpendState, now: datetime) -> int:
    """How much may have been spent today by `now`."""
    if state.pacing == "asap":
        return state.daily_budget_micros
    slack = max(state.max_cost_micros, int(state.daily_budget_micros * EVEN_SLACK_FRACTION))
    return min(state.daily_budget_micros, int(state.daily_budget_micros * day_fraction(now)) + slack)


def pacing_allows(state: SpendState, now: datetime) -> bool:
    if state.spent_micros >= state.lifetime_budget_micros:
        return False
    if state.spent_today_micros >= state.daily_budget_micros:
        return False
    return state.spent_today_micros < spend_allowance_micros(state, now)


def frequency_allows(*, served_last_hour: int, served_last_day: int, cap_hour: int | None, cap_day: int | None) -> bool:
    if cap_hour is not None and served_last_hour >= cap_hour:
        return False
    return not (cap_day is not None and served_last_day >= cap_day)
