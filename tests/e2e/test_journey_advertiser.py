"""Journey 2, an advertiser, end to end in a real browser (the stack of conftest's
`journey`: live Daphne, a real Celery worker on the embedded broker, Stripe at the edge).

Signs up, creates an organisation, tops up the balance (Checkout at the edge, the signed
webhook processed by the worker), creates a campaign with keywords and a creative (the
creative goes to review); staff approve it in the admin; the advertiser launches it and
previews which conversations it would match (only approved, active campaigns take part
in a preview, so that comes after the review); it serves in a guest's chat; the guest's
impression and click are in the dashboard's chart and table within a minute and in the
hourly roll-up the real task writes; the CSV export has them. docs/screenshots/
dashboard.png; axe on each page.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.e2e.conftest import ROOT, axe_serious, wait_until
from tests.e2e.stripe_edge import topup_paid
from tests.e2e.test_chat import send, wait_status

pytestmark = pytest.mark.e2e

EMAIL = "ada@fishco.example"
PASSWORD = "Journey-Advertiser-Passw0rd"
STAFF_EMAIL = "staff@journey.example"
STAFF_PASSWORD = "Journey-Staff-Passw0rd"
ORG = "Fish & Co"
CAMPAIGN = "Aquarium heaters"
HEADLINE = "Heaters for every tank"
LANDING = "https://fishco.example/heaters"
QUESTION = "Which aquarium heater should I buy for a 60 litre tank?"
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def staff(journey) -> None:
    journey.server.shell(
        "from accounts.models import User;"
        f" User.objects.create_superuser(email={STAFF_EMAIL!r}, password={STAFF_PASSWORD!r})"
    )


def admin_log_in(page) -> None:
    page.goto("/admin/login/")
    page.fill("input[name=username]", STAFF_EMAIL)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_advertiser_journey(journey, journey_page, staff, artifacts):
    server = journey.server
    page, errors = journey_page()
    journey.stripe.route_checkout(page.context)

    # --- signs up from the advertising landing page, creates an organisation ------------
    page.goto("/ads/")
    axe_serious(page, "advertise landing")
    page.get_by_role("link", name="Sign up to advertise").click()
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    if page.locator("input[name=password2]").count():
        page.fill("input[name=password2]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/ads/")
    page.get_by_role("link", name="Create your advertiser organisation").click()
    page.wait_for_url("**/ads/start/")
    axe_serious(page, "create organisation")
    page.fill("input[name=name]", ORG)
    page.fill("input[name=paid_by]", "Fish and Company Ltd.")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/ads/account/")
    assert ORG in page.locator("main").inner_text()
    axe_serious(page, "advertiser overview")

    # --- tops up $50 through Stripe Checkout (at the edge) and the signed webhook --------
    page.fill("input[name=amount]", "50.00")
    page.get_by_role("button", name="Top up").click()
    page.wait_for_url("https://checkout.stripe.com/c/pay/cs_*")
    (session,) = journey.stripe.sessions_of("payment")
    assert session["line_items"]["0"]["price_data"]["unit_amount"] == "5000"
    page.locator("#pay").click()
    page.wait_for_url("**/ads/account/?topup=success")
    assert topup_paid(journey.url, session) == (200, "ok")
    account_id = session["metadata"]["balance_account_id"]
    wait_until(
        lambda: server.query("SELECT amount_micros FROM billing_ledgerentry WHERE account_id = ?", (account_id,))
        == [(50_000_000,)],
        timeout=30, page=page, message="the top-up credited once by the worker",
    )
    page.reload()
    assert "$50.00" in page.locator("main").inner_text()

    # --- creates a campaign with keywords and a creative (sent to review) ----------------
    page.get_by_role("link", name="New campaign").click()
    page.wait_for_url("**/ads/campaigns/new/")
    page.fill("#id_name", CAMPAIGN)
    page.fill("#id_keywords", '"aquarium heater"\nfish tank heater')
    page.check("input[name=pacing][value=asap]")
    page.fill("#id_max_bid", "0.80")
    page.fill("#id_creative-headline", HEADLINE)
    page.fill("#id_creative-text", "Thermostat heaters for 20 to 300 litre tanks.")
    page.fill("#id_creative-question", "How warm should a tropical aquarium be?")
    page.fill("#id_creative-landing_url", LANDING)
    page.fill("#id_creative-display_domain", "fishco.example")
    assert page.locator("#card-preview [data-slot=headline]").text_content() == HEADLINE  # the live card preview
    axe_serious(page, "new campaign")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r".*/ads/campaigns/\d+/$"))
    campaign_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert "waiting for review" in page.locator(".messages").inner_text()
    assert server.query(
        "SELECT c.status, cr.review_status FROM ads_campaign c JOIN ads_creative cr ON cr.campaign_id = c.id"
        " WHERE c.id = ?", (campaign_id,),
    ) == [("draft", "pending")]
    axe_serious(page, "campaign detail")

    # --- staff approve it in the admin's review queue ------------------------------------
    staff_page, staff_errors = journey_page()
    admin_log_in(staff_page)
    staff_page.goto("/admin/ads/creative/?review_status__exact=pending")
    row = staff_page.locator("#result_list tbody tr", has_text=HEADLINE)
    row.locator("input[name=_selected_action]").check()
    staff_page.select_option("select[name=action]", "approve")
    staff_page.locator("button[name=index], input[name=index]").first.click()
    assert "Approved" in staff_page.locator(".messagelist").inner_text()
    assert server.query("SELECT review_status FROM ads_creative WHERE campaign_id = ?", (campaign_id,)) == [
        ("approved",)
    ]

    # --- the advertiser launches it and previews which conversations it would match ------
    page.reload()
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(rf".*/ads/campaigns/{campaign_id}/$"))
    assert server.query("SELECT status FROM ads_campaign WHERE id = ?", (campaign_id,)) == [("active",)]
    page.goto("/ads/preview/")
    axe_serious(page, "preview")

    def preview(text: str) -> str:
        page.fill("#id_text", text)
        # htmx swaps the whole panel: mark the old one so the wait is for the new answer.
        page.evaluate("document.getElementById('preview-panel').dataset.old = 'yes'")
        page.get_by_role("button", name="Preview decision").click()
        page.wait_for_selector(
            "#preview-panel:not([data-old]) .decision-won, #preview-panel:not([data-old]) .decision-none"
        )
        return page.locator("#preview-panel").inner_text()

    # The campaign index is rebuilt in the background after a change: wait for it.
    wait_until(lambda: "An ad would be shown" in preview(QUESTION), timeout=30, page=page,
               message="the preview to show the new campaign")
    assert HEADLINE in page.locator("#preview-panel").inner_text()
    assert "No ad would be shown" in preview("What is the capital of Portugal?")

    # --- it serves in a guest's chat; the guest sees it and clicks it --------------------
    guest, guest_errors = journey_page()
    guest.context.route(f"{LANDING}**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                      body="<!doctype html><title>Fish</title>"))
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    card = guest.locator(".ad-card", has_text=HEADLINE)
    for attempt in range(1, 4):  # only a decision that missed its time budget is retried
        guest.goto("/")
        guest.wait_for_selector("#connection-status[data-state=open]", state="attached")
        send(guest, QUESTION)
        wait_status(guest, "complete")
        try:
            card.wait_for(timeout=8000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise
    guest.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    with guest.expect_popup() as popup_info:
        card.locator("a.ad-headline").click()
    popup_info.value.wait_for_url(LANDING)
    wait_until(
        lambda: server.query("SELECT COUNT(*) FROM ads_click WHERE campaign_id = ? AND is_valid", (campaign_id,))
        == [(1,)],
        page=guest, message="the click counted",
    )
    assert guest_errors == []

    # --- the dashboard shows the impression and the click within a minute ----------------
    def dashboard_counts() -> tuple[str, str] | None:
        page.goto("/ads/performance/")
        row = page.locator("#by-campaign tbody tr", has_text=CAMPAIGN)
        cells = row.locator("td.num").all_inner_texts()
        return (cells[3], cells[4]) if cells and cells[3] != "0" and cells[4] != "0" else None

    assert wait_until(dashboard_counts, timeout=60, interval=2, page=page,
                      message="the impression and the click on the dashboard") == ("1", "1")
    chart = page.locator("[data-chart=daily-data]")
    chart.locator("canvas").first.wait_for()  # uPlot drew it
    chart_rows = page.evaluate("JSON.parse(document.getElementById('daily-data').textContent)")
    assert chart_rows and chart_rows[-1]["impressions"] == 1 and chart_rows[-1]["clicks"] == 1, chart_rows
    axe_serious(page, "performance")
    page.goto(f"/ads/campaigns/{campaign_id}/")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # --- the statistics roll up through the real task, in the worker ---------------------
    server.shell("from ads.tasks import stats_rollup; stats_rollup.delay()")
    wait_until(
        lambda: server.query(
            "SELECT impressions, clicks FROM ads_campaignstathourly WHERE campaign_id = ?", (campaign_id,)
        ) == [(1, 1)],
        timeout=60, page=page, message="the hourly roll-up written by the worker",
    )

    # --- exports CSV ---------------------------------------------------------------------
    page.goto("/ads/performance/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(download_info.value.path().read_text())))
    ours = [r for r in rows if CAMPAIGN in r.values()]
    assert ours, rows[:3]
    assert sum(int(r.get("impressions") or r.get("Impressions") or 0) for r in ours) == 1
    assert sum(int(r.get("clicks") or r.get("Clicks") or 0) for r in ours) == 1
    page.screenshot(path=str(artifacts / "journey-advertiser-performance.png"), full_page=True)
    assert errors == [] and staff_errors == []
