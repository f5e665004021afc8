"""The public ad library in a real browser, signed out: list, search, open an entry;
hostile advertiser text stays text. Screenshots: test-artifacts/ad-library-*.png.

The data is written into the live server's database by a `manage.py shell`
subprocess (the test process has its own test database), as tests/e2e/test_ads_inert.py does.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


SEED = r"""
import datetime as dt, json, uuid
from django.utils import timezone
from ads.models import Advertiser, Campaign, CampaignKeyword, Creative, Impression
from billing.ledger import balance_account_create

def advertiser(name, paid_by):
    return Advertiser.objects.create(name=name, paid_by=paid_by,
        balance_account=balance_account_create(name="Advertiser: " + name))

def served(adv, headline, text, url, domain, count, days_ago, language="en", keywords=()):
    c = Campaign.objects.create(advertiser=adv, name=headline, status="active", language=language,
        context_hints="Conversations about " + headline.lower() + ".")
    for kw, mt, neg in keywords:
        CampaignKeyword.objects.create(campaign=c, text=kw, match_type=mt, is_negative=neg)
    cr = Creative.objects.create(campaign=c, headline=headline, text=text, question="Tell me more?",
        landing_url=url, display_domain=domain, review_status="approved")
    now = timezone.now()
    Impression.objects.bulk_create([Impression(creative=cr, campaign=c, advertiser=adv, conversation_id=uuid.uuid4(),
        session_key="e2e-library", viewer_key="session:e2e-library", served_at=now - dt.timedelta(days=days_ago, minutes=i),
        is_valid=True, bid_type="cpc", bid_micros=500_000, price_micros=100_000) for i in range(count)])
    return cr.pk

acme = advertiser("Acme GPU Cloud", "Acme Compute Ltd.")
babel = advertiser("Babel Lessons", "")
evil = advertiser("Evil <script>window.__pwned=1</script> Org", "")
ids = {
    "acme": served(acme, "Rent H100s by the hour", "Spin up a GPU in 60 seconds. No contract.",
        "https://www.acme-gpu.example/llama?utm=e2e", "acme-gpu.example", 1500, 3,
        keywords=[("gpu rental", "broad", False), ("h100 price", "exact", False), ("free", "broad", True)]),
    "babel": served(babel, "Apprenez l'espagnol", "Cours en ligne avec des professeurs natifs.",
        "https://babel.example/es", "babel.example", 12, 20, language="fr"),
    "evil": served(evil, "<img src=x onerror=window.__pwned=2>", "<script>window.__pwned=3</script>",
        "https://evil.example/", "evil.example", 3, 1),
}
print("IDS=" + json.dumps(ids))
"""


@pytest.fixture(scope="module")
def library_data(live) -> dict:
    return live.seed(SEED)


def test_open_search_and_open_an_entry(new_page, library_data, artifacts):
    page, errors = new_page()
    page.goto("/ads/library/")
    assert page.locator("h1").inner_text() == "Ad library"
    rows = page.locator("#library-table tbody tr")
    assert rows.count() == 3
    page.screenshot(path=str(artifacts / "ad-library-list.png"), full_page=True)

    page.fill("#library-advertiser", "acme")
    page.click("#library-search button[type=submit]")
    page.wait_for_url("**/ads/library/?*advertiser=acme*")
    assert rows.count() == 1
    assert "1,000–10,000" in rows.first.inner_text()

    page.fill("#library-advertiser", "")
    page.fill("#library-q", "espagnol")
    page.click("#library-search button[type=submit]")
    page.wait_for_url("**q=espagnol*")
    assert rows.count() == 1 and "Babel Lessons" in rows.first.inner_text()

    page.fill("#library-q", "")
    page.fill("#library-advertiser", "acme")
    page.click("#library-search button[type=submit]")
    page.wait_for_url("**advertiser=acme*")
    page.click("#library-table a")
    page.wait_for_url(f"**/ads/library/{library_data['acme']}/")
    assert page.locator("#library-entry-headline").inner_text() == "Rent H100s by the hour"
    body = page.locator("main").inner_text()
    for expected in ("Acme Compute Ltd.", "www.acme-gpu.example", "1,000–10,000", "h100 price", "gpu rental", "en"):
        assert expected in body
    assert "utm=e2e" not in page.content()
    page.screenshot(path=str(artifacts / "ad-library-entry.png"), full_page=True)
    assert errors == []


def test_hostile_text_is_shown_as_text(new_page, library_data, artifacts):
    page, errors = new_page()
    page.goto("/ads/library/")
    assert "<script>window.__pwned=3</script>" in page.locator("#library-table").inner_text()
    page.goto(f"/ads/library/{library_data['evil']}/")
    assert page.locator("#library-entry-headline").inner_text() == "<img src=x onerror=window.__pwned=2>"
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(artifacts / "ad-library-hostile.png"), full_page=True)
    assert errors == []
