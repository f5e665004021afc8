"""Seed the three plans (idempotent: missing plans are created, staff edits are kept).

Plus has no ads: the entitlements know only "ads on/off", and a paid plan that still
shows ads is a poor offer (docs/billing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.models import ApiTierPrice, Plan


@dataclass(frozen=True)
class PlanSpec:
    slug: str
    name: str
    description: str
    monthly_key: str
    yearly_key: str
    monthly_price_micros: int
    yearly_price_micros: int
    tiers: tuple[str, ...]
    daily_tokens: int
    requests_per_minute: int
    concurrent_runs: int
    max_context: int
    ads_enabled: bool
    sort_order: int
    # The API's limits: requests a minute, tokens a minute, tokens a day, streams at once.
    api_limits: tuple[int, int, int, int] = (0, 0, 0, 0)


# The API's limits per plan (also what migration 0007 gave existing plans). Free gets a
# trial's worth (and is not metered: no Stripe subscription); paid plans are metered.
API_LIMITS = {
    "free": (20, 20_000, 200_000, 2),
    "plus": (60, 200_000, 5_000_000, 8),
    "pro": (300, 1_000_000, 50_000_000, 32),
}

# The API's price per million tokens (prompt + completion) per tier, in micros, and the
# Stripe meter each tier reports to: a mirror of the prices set in Stripe.
API_PRICES = [
    ("llama-3.1-8b", "lhama_api_tokens_llama_3_1_8b", 200_000),
    ("llama-3.1-70b", "lhama_api_tokens_llama_3_1_70b", 900_000),
    ("llama-3.1-405b", "lhama_api_tokens_llama_3_1_405b", 3_000_000),
]

PLANS = [
    PlanSpec("free", "Free", "Everyday chat with Llama 3.1 8B, paid for by sponsored suggestions.", "", "", 0, 0,
             ("llama-3.1-8b",), 50_000, 10, 1, 8_192, True, 10, API_LIMITS["free"]),
    PlanSpec("plus", "Plus", "Adds Llama 3.1 70B, a ten times larger budget, and no ads.",
             "lhama_plus_monthly", "lhama_plus_yearly", 9_990_000, 99_000_000,
             ("llama-3.1-8b", "llama-3.1-70b"), 500_000, 30, 2, 32_768, False, 20, API_LIMITS["plus"]),
    PlanSpec("pro", "Pro", "Adds Llama 3.1 405B, the largest budget and the longest conversations. No ads.",
             "lhama_pro_monthly", "lhama_pro_yearly", 29_990_000, 299_000_000,
             ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"), 2_000_000, 60, 4, 65_536, False, 30,
             API_LIMITS["pro"]),
]


def seed_demo(*, stdout) -> None:
    for spec in PLANS:
        plan, created = Plan.objects.get_or_create(
            slug=spec.slug,
            defaults={
                "name": spec.name,
                "description": spec.description,
                "stripe_monthly_lookup_key": spec.monthly_key,
                "stripe_yearly_lookup_key": spec.yearly_key,
                "monthly_price_micros": spec.monthly_price_micros,
                "yearly_price_micros": spec.yearly_price_micros,
                "daily_tokens": spec.daily_tokens,
                "requests_per_minute": spec.requests_per_minute,
                "concurrent_runs": spec.concurrent_runs,
                "max_context": spec.max_context,
                "ads_enabled": spec.ads_enabled,
                "sort_order": spec.sort_order,
                "model_tier_slugs": list(spec.tiers),
                "api_requests_per_minute": spec.api_limits[0],
                "api_tokens_per_minute": spec.api_limits[1],
                "api_tokens_per_day": spec.api_limits[2],
                "api_concurrent_streams": spec.api_limits[3],
            },
        )
        if not created and not plan.model_tier_slugs:
            plan.model_tier_slugs = list(spec.tiers)
            plan.save(update_fields=["model_tier_slugs"])
    for tier_slug, event_name, micros in API_PRICES:
        ApiTierPrice.objects.get_or_create(
            tier_slug=tier_slug, defaults={"meter_event_name": event_name, "micros_per_million_tokens": micros}
        )
    stdout.write(f"Plans: {', '.join(Plan.objects.values_list('name', flat=True))}")
