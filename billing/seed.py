"""Seed the three plans (idempotent: missing plans are created, staff edits are kept).

Plus has no ads: the entitlements know only "ads on/off", and a paid plan that still
shows ads is a poor offer (docs/billing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.models import Plan


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


PLANS = [
    PlanSpec("free", "Free", "Everyday chat with Llama 3.1 8B, paid for by sponsored suggestions.", "", "", 0, 0,
             ("llama-3.1-8b",), 50_000, 10, 1, 8_192, True, 10),
    PlanSpec("plus", "Plus", "Adds Llama 3.1 70B, a ten times larger budget, and no ads.",
             "lhama_plus_monthly", "lhama_plus_yearly", 9_990_000, 99_000_000,
             ("llama-3.1-8b", "llama-3.1-70b"), 500_000, 30, 2, 32_768, False, 20),
    PlanSpec("pro", "Pro", "Adds Llama 3.1 405B, the largest budget and the longest conversations. No ads.",
             "lhama_pro_monthly", "lhama_pro_yearly", 29_990_000, 299_000_000,
             ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"), 2_000_000, 60, 4, 65_536, False, 30),
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
            },
        )
        if not created and not plan.model_tier_slugs:
            plan.model_tier_slugs = list(spec.tiers)
            plan.save(update_fields=["model_tier_slugs"])
    stdout.write(f"Plans: {', '.join(Plan.objects.values_list('name', flat=True))}")
