"""Accessibility and layout of every page people use, in a real browser: axe-core (from
npm, node_modules/axe-core) reports no serious or critical violation, in the light and
the dark theme, on a desktop and on a 375 px phone, and nothing overflows sideways.
Screenshots: test-artifacts/page-<name>-<viewport>-<theme>.png.

The theme is the system's (Playwright's color_scheme) on most pages, and the header's
switch once: the switch must win over the system and survive a reload.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ROOT
from tests.e2e.test_ads_inert import PASSWORD
from tests.e2e.test_chat_screenshots import chat_with_code

pytestmark = pytest.mark.e2e

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 740}}
GUEST_PAGES = {
    "pricing": "/billing/pricing",
    "login": "/accounts/login/",
    "signup": "/accounts/signup/",
    "library": "/ads/library/",
}
MEMBER_PAGES = {
    "account": "/account/",
    "dashboard": "/ads/account/",
    "campaigns": "/ads/campaigns/",
    "performance": "/ads/performance/",
}

SEED = r"""
import json
from accounts.models import User
from ads.services.campaigns import advertiser_create, campaign_create
from billing.ledger import ledger_credit
u = User.objects.create_user(email="ally@a11y.example", password=__PASSWORD__, display_name="Ally")
acme = advertiser_create(name="Acme GPU Cloud", owner=u, paid_by="Acme Compute Ltd.")
ledger_credit(account_id=acme.balance_account_id, amount_micros=50_000_000, reference="a11y-acme")
campaign_create(advertiser=acme, name="GPU rental", keywords="gpu rental", status="draft")
print("IDS=" + json.dumps({"user": u.pk}))
"""


@pytest.fixture(scope="module")
def member(live) -> dict:
    return live.seed(SEED.replace("__PASSWORD__", repr(PASSWORD)))


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.is_file():
        pytest.skip("axe-core is not installed (npm ci)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ': ' + (n.any[0] || n.all[0] || {}).message)}))"""
    )
    return found


def check_page(page, errors, artifacts, name: str, viewport: str, theme: str) -> None:
    width = VIEWPORTS[viewport]["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} overflows at {width} px"
    page.screenshot(path=artifacts / f"page-{name}-{viewport}-{theme}.png", full_page=True)
    violations = axe_violations(page)
    assert violations == [], f"{name} ({viewport}, {theme}): {json.dumps(violations, indent=1)}"
    assert errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_guest_pages(new_page, artifacts, viewport, theme):
    page, errors = new_page(viewport=VIEWPORTS[viewport], color_scheme=theme, bypass_csp=True)
    chat_with_code(page)
    check_page(page, errors, artifacts, "chat", viewport, theme)
    for name, path in GUEST_PAGES.items():
        page.goto(path)
        check_page(page, errors, artifacts, name, viewport, theme)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_signed_in_pages(new_page, member, artifacts, viewport, theme):
    page, errors = new_page(viewport=VIEWPORTS[viewport], color_scheme=theme, bypass_csp=True)
    page.goto("/accounts/login/")
    page.fill("input[name=login]", "ally@a11y.example")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    for name, path in MEMBER_PAGES.items():
        response = page.goto(path)
        assert response is not None and response.ok, (path, response and response.status)
        check_page(page, errors, artifacts, name, viewport, theme)


def test_the_theme_switch_wins_over_the_system_and_is_kept(new_page):
    page, errors = new_page(color_scheme="light")
    page.goto("/billing/pricing")
    switch = page.locator("[data-theme-switch]")
    assert switch.inner_text() == "Theme: system"
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    switch.click()  # system → light: no change on a light system
    assert page.evaluate(background) == light
    switch.click()  # light → dark
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.reload()
    assert page.evaluate(background) == dark
    assert page.locator("[data-theme-switch]").inner_text() == "Theme: dark"
    page.locator("[data-theme-switch]").click()  # dark → system (light here)
    assert page.evaluate(background) == light
    assert errors == []
