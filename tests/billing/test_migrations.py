"""Plans moved from a many-to-many to assistant's tiers to tier slugs held as data: no plan loses a tier."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("billing", "0004_ledger_running_balance")]
AFTER = [("billing", "0005_plan_model_tier_slugs")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_tiers_of_every_plan_become_its_tier_slugs_and_back():
    try:
        old = _migrate(BEFORE)
        ModelTier = old.get_model("assistant", "ModelTier")
        Plan = old.get_model("billing", "Plan")
        tiers = {
            slug: ModelTier.objects.create(slug=slug, display_name=slug, served_model_name=slug, base_url="http://x/v1",
                                           sort_order=order)
            for slug, order in [("big", 30), ("small", 10), ("middle", 20)]
        }
        pro = Plan.objects.create(slug="pro", name="Pro", daily_tokens=1, requests_per_minute=1, max_context=1)
        pro.tiers.add(tiers["big"], tiers["small"], tiers["middle"])
        free = Plan.objects.create(slug="free", name="Free", daily_tokens=1, requests_per_minute=1, max_context=1)
        free.tiers.add(tiers["small"])
        Plan.objects.create(slug="none", name="None", daily_tokens=1, requests_per_minute=1, max_context=1)

        new = _migrate(AFTER)
        slugs = dict(new.get_model("billing", "Plan").objects.values_list("slug", "model_tier_slugs"))
        assert slugs == {"pro": ["small", "middle", "big"], "free": ["small"], "none": []}

        back = _migrate(BEFORE)
        plans = back.get_model("billing", "Plan").objects.all()
        assert {p.slug: sorted(p.tiers.values_list("slug", flat=True)) for p in plans} == {
            "pro": ["big", "middle", "small"], "free": ["small"], "none": [],
        }
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_plans_that_exist_get_api_limits_and_the_tiers_get_api_prices():
    before, after = [("billing", "0006_ledger_reversals")], [("billing", "0007_api_limits_and_metering")]
    try:
        old = _migrate(before)
        Plan = old.get_model("billing", "Plan")
        for slug in ("free", "plus", "pro", "staff-special"):
            Plan.objects.create(slug=slug, name=slug, daily_tokens=1, requests_per_minute=1, max_context=1)

        new = _migrate(after)
        limits = {
            p.slug: (p.api_requests_per_minute, p.api_tokens_per_minute, p.api_tokens_per_day, p.api_concurrent_streams)
            for p in new.get_model("billing", "Plan").objects.all()
        }
        assert limits == {
            "free": (20, 20_000, 200_000, 2),
            "plus": (60, 200_000, 5_000_000, 8),
            "pro": (300, 1_000_000, 50_000_000, 32),
            "staff-special": (0, 0, 0, 0),  # a plan of staff's own: no API until staff set its limits
        }
        prices = dict(new.get_model("billing", "ApiTierPrice").objects.values_list("tier_slug", "micros_per_million_tokens"))
        assert prices == {"llama-3.1-8b": 200_000, "llama-3.1-70b": 900_000, "llama-3.1-405b": 3_000_000}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
