"""Advertiser-supplied text in a real browser: HTML and script in names, headlines,
descriptions and rejection reasons are shown as text and never run — in the advertiser
dashboard, in the live card preview, and in the Django admin. The landing-URL field
refuses javascript: and data: URLs. Also takes screenshots of the dashboard pages
(test-artifacts/ads-*.png).

Uses the live server of tests/e2e/conftest.py; the data is written into that server's
database by a `manage.py shell` subprocess (the test process has its own test database).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "e2e advertiser password 7"
IMG = "<img src=x onerror=window.__pwned=1>"
SCRIPT = "<script>window.__pwned=2</script>"
ORG = "Evil <script>window.__pwned=3</script> Org"
REASON = "<img src=x onerror=window.__pwned=4> is not allowed"
QUESTION = '"><svg onload=window.__pwned=5>'

SEED = r"""
import datetime as dt, json, math
from django.utils import timezone
from accounts.models import User
from ads.services.campaigns import advertiser_create, campaign_create
from ads.services.review import creative_approve, creative_create, creative_reject
from ads.models import Campaign, CampaignStatDaily, Creative
from billing.ledger import ledger_credit

P = __PASSWORD__
staff = User.objects.create_superuser(email="staff@e2e.example", password=P)
dana = User.objects.create_user(email="dana@e2e.example", password=P, display_name="Dana")
eve = User.objects.create_user(email="eve@e2e.example", password=P)
today = timezone.now().date()

def stats(campaign, scale, ctr, cpc):
    spent = 0
    for i in range(30):
        day = today - dt.timedelta(days=29 - i)
        imps = int(scale * (1 + 0.35 * math.sin(i / 3.0)) * (0.6 + i / 45))
        clicks = int(imps * ctr * (1 + 0.2 * math.cos(i / 2.0)))
        spend = clicks * cpc
        spent += spend
        CampaignStatDaily.objects.create(campaign=campaign, day=day, impressions=imps, clicks=clicks,
            spend_micros=spend, invalid_impressions=imps // 40, invalid_clicks=clicks // 15)
    Campaign.objects.filter(pk=campaign.pk).update(spent_micros=spent, spent_today_micros=spend)

acme = advertiser_create(name="Acme GPU Cloud", owner=dana, paid_by="Acme Compute Ltd.")
ledger_credit(account_id=acme.balance_account_id, amount_micros=248_530_000, reference="e2e-acme")
specs = [
    ("GPU rental — autumn", 'gpu rental\n"fine-tune llama"\n[h100 price]\n-free', "active", 600_000, 900, 0.031, 410_000,
     "Rent H100s by the hour", "Spin up a GPU in 60 seconds. Per-second billing, no contract.",
     "How much does it cost to fine-tune Llama on rented GPUs?", "https://www.acme-gpu.example/llama", "acme-gpu.example"),
    ("Inference endpoints", '"serve llama"\nvllm\ninference', "paused", 350_000, 400, 0.022, 280_000,
     "Serverless Llama endpoints", "OpenAI-compatible API for open models, priced per token.",
     "What is the cheapest way to serve Llama 3.1 70B?", "https://acme-gpu.example/inference", "acme-gpu.example"),
]
ids = {}
for name, kw, status, bid, scale, ctr, cpc, headline, text, question, url, domain in specs:
    c = campaign_create(advertiser=acme, name=name, keywords=kw, status=status, max_bid_micros=bid, pacing="even",
        daily_budget_micros=25_000_000, lifetime_budget_micros=500_000_000, frequency_cap_hour=2, frequency_cap_day=6,
        context_hints="Developers training, fine-tuning or serving open models who need GPUs.")
    cr = creative_create(campaign=c, headline=headline, text=text, question=question, landing_url=url, display_domain=domain)
    creative_approve(creative=cr, reviewer=staff)
    stats(c, scale, ctr, cpc)
    ids.setdefault("acme_campaign", c.pk)
draft = campaign_create(advertiser=acme, name="Black Friday GPUs", keywords="gpu deal", status="draft")
cr = creative_create(campaign=draft, headline="Black Friday: 40% off A100s", text="Three days only.",
    question="Is it worth buying GPU time in advance?", landing_url="https://acme-gpu.example/bf", display_domain="acme-gpu.example")
creative_reject(creative=cr, reviewer=staff, reason="Discount claims need the end date on the landing page.")

evil = advertiser_create(name=__ORG__, owner=eve)
ledger_credit(account_id=evil.balance_account_id, amount_micros=10_000_000, reference="e2e-evil")
bad = campaign_create(advertiser=evil, name=__IMG__, keywords="widgets", status="active")
# Written directly, as legacy or imported data would be: the automatic review refuses HTML.
creative = Creative.objects.create(campaign=bad, headline=__IMG__, text=__SCRIPT__, question=__QUESTION__,
    landing_url="https://evil.example/", display_domain="evil.example", review_status="rejected", review_reason=__REASON__)
stats(bad, 50, 0.05, 100_000)
ids.update(evil_campaign=bad.pk, evil_creative=creative.pk, evil_advertiser=evil.pk)
print("IDS=" + json.dumps(ids))
"""


@pytest.fixture(scope="module")
def seeded(live) -> dict:
    """Users, advertisers, campaigns and statistics in the live server's database."""
    code = SEED
    for name, value in {
        "__PASSWORD__": PASSWORD,
        "__ORG__": ORG,
        "__IMG__": IMG,
        "__SCRIPT__": SCRIPT,
        "__REASON__": REASON,
        "__QUESTION__": QUESTION,
    }.items():
        code = code.replace(name, repr(value))
    return live.seed(code)


def log_in(new_page, email: str, *, admin: bool = False):
    page, errors = new_page()
    if admin:
        page.goto("/admin/login/")
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
    else:
        page.goto("/accounts/login/?next=/ads/")
        page.fill("input[name=login]", email)
        page.fill("input[name=password]", PASSWORD)
        page.locator("main form button[type=submit]").click()
        page.wait_for_url("**/ads/account/")
    return page, errors


def assert_inert(page, errors, *texts: str) -> None:
    """Nothing ran, no element was made from the payloads, and each text is visible as text."""
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("svg[onload]").count() == 0
    body = page.locator("body").inner_text()
    for text in texts:
        assert text in body, text
    assert errors == []


def test_dashboard_shows_advertiser_html_as_text(new_page, seeded, artifacts):
    page, errors = log_in(new_page, "eve@e2e.example")
    assert_inert(page, errors, ORG)
    page.goto("/ads/campaigns/")
    assert_inert(page, errors, IMG)
    page.goto(f"/ads/campaigns/{seeded['evil_campaign']}/")
    assert_inert(page, errors, IMG, SCRIPT, REASON, QUESTION)
    page.screenshot(path=str(artifacts / "ads-inert-campaign.png"), full_page=True)
    page.goto(f"/ads/creatives/{seeded['evil_creative']}/edit/")
    assert_inert(page, errors, REASON)
    assert page.input_value("#id_headline") == IMG
    assert page.locator("#card-preview [data-slot=headline]").text_content() == IMG
    assert page.locator("#card-preview [data-slot=text]").text_content() == SCRIPT
    page.goto("/ads/performance/")
    assert_inert(page, errors, IMG)


def test_live_card_preview_inserts_typed_html_as_text(new_page, seeded, artifacts):
    page, errors = log_in(new_page, "eve@e2e.example")
    page.goto(f"/ads/campaigns/{seeded['evil_campaign']}/creatives/new/")
    page.fill("#id_headline", "<b>bold</b>" + IMG)
    page.fill("#id_text", SCRIPT + "<img src=x onerror=window.__pwned=7>")
    page.fill("#id_question", QUESTION)
    page.fill("#id_landing_url", "https://www.shop.example/path")
    card = page.locator("#card-preview")
    assert card.locator("[data-slot=headline]").text_content() == "<b>bold</b>" + IMG
    assert card.locator("[data-slot=text]").text_content() == SCRIPT + "<img src=x onerror=window.__pwned=7>"
    assert card.locator("[data-slot=question]").text_content() == QUESTION
    assert card.locator("[data-slot=display_domain]").text_content() == "shop.example"
    assert card.locator("b, img, script, svg").count() == 0
    page.screenshot(path=str(artifacts / "ads-inert-live-preview.png"), full_page=True)
    assert_inert(page, errors)


@pytest.mark.parametrize(
    "landing_url", ["javascript:window.__pwned=8", "data:text/html,<script>window.__pwned=9</script>"]
)
def test_javascript_and_data_landing_urls_are_refused_by_the_form(new_page, seeded, landing_url):
    page, errors = log_in(new_page, "dana@e2e.example")
    campaign = seeded["acme_campaign"]
    page.goto(f"/ads/campaigns/{campaign}/creatives/new/")
    page.fill("#id_headline", "A headline")
    page.fill("#id_text", "A description.")
    page.fill("#id_question", "A question?")
    page.fill("#id_landing_url", landing_url)
    page.locator("#creative-form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/ads/campaigns/{campaign}/creatives/new/")
    assert page.get_by_text("The landing URL must start with https://").is_visible()
    assert page.input_value("#id_landing_url") == landing_url  # kept, to correct
    assert_inert(page, errors)
    page.goto(f"/ads/campaigns/{campaign}/")
    assert page.locator(".creative-item").count() == 1


def test_admin_shows_advertiser_html_as_text(new_page, seeded, artifacts):
    page, errors = log_in(new_page, "staff@e2e.example", admin=True)
    page.goto("/admin/ads/creative/")
    assert_inert(page, errors, IMG)
    page.goto(f"/admin/ads/creative/{seeded['evil_creative']}/change/")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x], svg[onload]").count() == 0
    assert page.input_value("#id_headline") == IMG
    assert page.input_value("#id_text") == SCRIPT
    page.screenshot(path=str(artifacts / "ads-inert-admin-creative.png"), full_page=True)
    page.goto("/admin/ads/campaign/")
    assert_inert(page, errors, IMG)
    page.goto("/admin/ads/advertiser/")
    assert_inert(page, errors, ORG)
    page.goto(f"/admin/ads/advertiser/{seeded['evil_advertiser']}/change/")
    assert page.evaluate("window.__pwned") is None
    assert errors == []


def test_dashboard_pages_screenshots(new_page, seeded, artifacts):
    """The pages as an advertiser sees them (for people to look at), with no script errors."""
    page, errors = log_in(new_page, "dana@e2e.example")
    page.screenshot(path=str(artifacts / "ads-overview.png"), full_page=True)
    page.goto("/ads/campaigns/")
    assert page.locator("#campaigns-table tbody tr").count() == 3
    page.screenshot(path=str(artifacts / "ads-campaigns.png"), full_page=True)
    page.goto(f"/ads/campaigns/{seeded['acme_campaign']}/")
    page.wait_for_selector(".chart .uplot")
    page.screenshot(path=str(artifacts / "ads-campaign.png"), full_page=True)
    page.goto("/ads/performance/")
    page.wait_for_selector(".chart .uplot")
    assert page.locator("#by-campaign tbody tr").count() == 3
    page.screenshot(path=str(artifacts / "ads-performance.png"), full_page=True)
    page.goto("/ads/campaigns/new/")
    page.fill("#id_creative-headline", "Rent H100s by the hour")
    page.fill("#id_creative-text", "Spin up a GPU in 60 seconds.")
    page.fill("#id_creative-question", "How much does it cost to fine-tune Llama?")
    page.fill("#id_creative-landing_url", "https://www.acme-gpu.example/llama")
    assert page.locator("#card-preview [data-slot=display_domain]").text_content() == "acme-gpu.example"
    page.screenshot(path=str(artifacts / "ads-campaign-new.png"), full_page=True)
    page.goto("/ads/preview/")
    page.fill("#id_text", "I want to fine-tune Llama 3.1 8B. Where can I find a cheap gpu rental for a few hours?")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#preview-result .card", timeout=60000)
    page.screenshot(path=str(artifacts / "ads-preview.png"), full_page=True)
    assert errors == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/ads/performance/")
    page.screenshot(path=str(artifacts / "ads-performance-mobile.png"), full_page=True)
    dark, dark_errors = new_page(color_scheme="dark")
    dark.goto("/accounts/login/?next=/ads/")
    dark.fill("input[name=login]", "dana@e2e.example")
    dark.fill("input[name=password]", PASSWORD)
    dark.locator("main form button[type=submit]").click()
    dark.wait_for_url("**/ads/account/")
    dark.goto(f"/ads/campaigns/{seeded['acme_campaign']}/")
    dark.wait_for_selector(".chart .uplot")
    dark.screenshot(path=str(artifacts / "ads-campaign-dark.png"), full_page=True)
    assert dark_errors == []
    anonymous, anonymous_errors = new_page()
    anonymous.goto("/ads/")
    anonymous.screenshot(path=str(artifacts / "ads-landing.png"), full_page=True)
    assert anonymous_errors == []
