"""Budget pacing and frequency caps: pure functions of the state and a clock, so they
can be tested over simulated days.

Even pacing allows spend up to the daily budget times the fraction of the (UTC) day
elapsed, plus a slack of a few bids so that a campaign is not frozen by the event
that is in flight; ASAP pacing allows spend up to the daily budget at once. Both stop
at the lifetime budget.

The pacing rule takes plain numbers or numpy arrays alike: the campaign index applies
it to every candidate at once, and there is no second, scalar copy of it.
"""

from __future__ import annotations

from datetime import datetime, time

import numpy as np

EVEN_SLACK_FRACTION = 0.02  # of the daily budget


def day_fraction(now: datetime) -> float:
    midnight = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    return min(1.0, max(0.0, (now - midnight).total_seconds() / 86400.0))


def spend_allowance_micros(*, even, daily_budget_micros, max_cost_micros, now: datetime):
    """How much may have been spent today by `now`. `even`: even pacing (else ASAP);
    `max_cost_micros`: the most one event can cost (the slack is at least that)."""
    daily = np.asarray(daily_budget_micros, dtype=np.int64)
    slack = np.maximum(max_cost_micros, (daily * EVEN_SLACK_FRACTION).astype(np.int64))
    return np.where(even, np.minimum(daily, (daily * day_fraction(now)).astype(np.int64) + slack), daily)


def pacing_allows(
    *,
    even,
    daily_budget_micros,
    lifetime_budget_micros,
    spent_micros,
    spent_today_micros,
    max_cost_micros,
    now: datetime,
):
    """Whether a campaign may spend (serve) now: under its lifetime budget, its daily
    budget, and the pacing allowance. `spent_today_micros` counts today's spend only."""
    allowance = spend_allowance_micros(
        even=even, daily_budget_micros=daily_budget_micros, max_cost_micros=max_cost_micros, now=now
    )
    spent_today = np.asarray(spent_today_micros, dtype=np.int64)
    return (
        (np.asarray(spent_micros, dtype=np.int64) < lifetime_budget_micros)
        & (spent_today < daily_budget_micros)
        & (spent_today < allowance)
    )


def frequency_allows(*, served_last_hour: int, served_last_day: int, cap_hour: int | None, cap_day: int | None) -> bool:
    if cap_hour is not None and served_last_hour >= cap_hour:
        return False
    return not (cap_day is not None and served_last_day >= cap_day)
