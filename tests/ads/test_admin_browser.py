"""Advertiser text with HTML and script is inert in the admin, in a real browser."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory
from tests.factories import TEST_PASSWORD, UserFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM), reason="needs chromium"),
]


@pytest.mark.django_db(transaction=True)
def test_admin_renders_advertiser_html_as_text(live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    staff = UserFactory(is_staff=True, is_superuser=True)
    advertiser = AdvertiserFactory(name=f"Acme {PAYLOAD}")
    creative = CreativeFactory(
        campaign=CampaignFactory(advertiser=advertiser, name=f"Camp {PAYLOAD}"),
        headline="Hi <b>bold</b>",
        text=PAYLOAD,
        question=f"Q {PAYLOAD}",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", staff.email)
        page.fill("#id_password", TEST_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        for path in (
            "/admin/ads/creative/",
            f"/admin/ads/creative/{creative.pk}/change/",
            "/admin/ads/campaign/",
            "/admin/ads/advertiser/",
        ):
            page.goto(live_server.url + path)
            assert page.evaluate("window.__pwned") is None, path
            assert page.locator("b", has_text="bold").count() == 0, path
            assert page.locator("img[src=x]").count() == 0, path
        page.goto(f"{live_server.url}/admin/ads/creative/")
        assert "Hi <b>bold</b>" in page.inner_text("#result_list")
        page.screenshot(path=str(tmp_path / "admin-creatives.png"))
        browser.close()
