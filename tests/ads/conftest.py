from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ads import index as ad_index

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _ads_index_sync(settings):
    """Rebuild the in-memory campaign index synchronously whenever services change
    campaigns (in production it is refreshed in a background thread)."""
    settings.ADS_INDEX_SYNC = True
    ad_index.reset()
    yield
    ad_index.reset()


@pytest.fixture(autouse=True)
def _own_rate_limits(settings):
    """Each test counts its own tracking requests (the rate-limit counters live in the
    cache, which Redis keeps from one test to the next)."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl:{uuid.uuid4().hex}:"


@pytest.fixture
def labelled_campaigns(db):
    """The labelled campaigns of tests/ads/data/campaigns.json, imported and approved."""
    from ads.services.importing import ads_import

    ads_import(data=json.loads((DATA / "campaigns.json").read_text()), auto_approve=True, source="tests")
    ad_index.reset()


@pytest.fixture
def labelled_conversations() -> list[dict]:
    return json.loads((DATA / "conversations.json").read_text())["conversations"]
