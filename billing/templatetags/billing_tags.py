"""Template helpers for billing: money in micros, limits in plain words, the account plan box."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from billing.entitlements import Entitlements
from billing.models import Plan
from billing.selectors import AccountPlan, account_plan, model_tier_names

register = template.Library()


@register.filter
def usd(micros: int | None, places: int = 2) -> str:
    """1_500_000 -> "$1.50"; {{ cost|usd:6 }}: 24_600 -> "$0.024600" (API costs are fractions of a cent)."""
    micros = int(micros or 0)
    places = max(0, min(6, int(places)))
    sign = "-" if micros < 0 else ""
    unit = 10 ** (6 - places)
    amount = (abs(micros) + unit // 2) // unit  # half up, in units of the last place shown
    dollars, fraction = divmod(amount, 10**places)
    return f"{sign}${intcomma(dollars)}" + (f".{fraction:0{places}d}" if places else "")


def _k(tokens: int) -> str:
    """Context sizes the way models are described: 8192 -> "8K", 131072 -> "128K"."""
    if tokens >= 1024 and tokens % 1024 == 0:
        return f"{tokens // 1024}K"
    return intcomma(tokens)


@register.filter
def limits_in_words(source: Plan | Entitlements) -> list[str]:
    """The limits of a plan as short sentences for people, not engineers."""
    slugs = set(source.model_tier_slugs if isinstance(source, Plan) else source.tier_slugs)
    tiers = [name for slug, name in model_tier_names().items() if slug in slugs]
    words = int(source.daily_tokens * 0.75)
    runs = source.concurrent_runs
    lines = [
        "Models: " + (", ".join(tiers) if tiers else "none"),
        f"{intcomma(source.daily_tokens)} tokens a day (about {intcomma(words)} words), reset at midnight UTC",
        f"Up to {source.requests_per_minute} messages a minute",
        f"{runs} answer{'s' if runs != 1 else ''} at a time",
        f"Conversations up to {_k(source.max_context)} tokens of context",
        "Sponsored suggestions beside some answers" if source.ads_enabled else "No ads",
    ]
    return lines


@register.simple_tag
def account_plan_for(user) -> AccountPlan:
    return account_plan(user=user)
