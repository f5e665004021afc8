"""Template filters for the advertiser dashboard (money in micros, rates)."""

from __future__ import annotations

from django import template

from ads.dashboard.money import format_usd

register = template.Library()


@register.filter
def usd(micros: int | None, places: int = 2) -> str:
    """{{ campaign.max_bid_micros|usd }} -> '$0.50'; {{ cpc|usd:4 }} -> '$0.1234'."""
    return format_usd(micros, int(places))


@register.filter
def percent(rate: float | None, places: int = 2) -> str:
    """A 0..1 ratio as '1.23%'; None (nothing to divide by) as an em dash."""
    if rate is None:
        return "—"
    return f"{rate * 100:.{int(places)}f}%"
