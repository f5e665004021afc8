"""Fraud scenarios against the tracking endpoints, as an attacker would try them. Each
one charges nothing (the ledger balance and the campaign's spend stay the same to the
micro) and shows up as invalid traffic with its reason; the honest path is charged
exactly once. Runs on SQLite and PostgreSQL (+ Redis for the rate-limit counters)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from allauth.account.signals import user_logged_in
from django.db import connections
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from ads import tracking
from ads.models import Campaign, Click, GuestViewer, Impression, InvalidEvent
from ads.services import delivery
from assistant.models import Conversation, Message
from assistant.signals import GUEST_KEY
from billing.ledger import balance_micros
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FARM_IP = "203.0.113.7"
CPC_PRICE = 400_000
CPM_PRICE = 3_000_000  # per thousand: 3_000 micros per impression


# --- helpers -----------------------------------------------------------------------


def served(creative, *, user=None, session_key="", conversation=None, when=None, price=None) -> Impression:
    """An impression served (and its frame sent) `when`, by default a few seconds ago."""
    campaign = creative.campaign
    when = when or timezone.now() - timedelta(seconds=5)
    return Impression.objects.create(
        creative=creative,
        campaign=campaign,
        advertiser=campaign.advertiser,
        conversation_id=conversation.pk if conversation else None,
        user=user,
        session_key=session_key,
        viewer_key=tracking.viewer_key(user_id=user.pk if user else None, session_key=session_key),
        served_at=when,
        sent_at=when,
        bid_type=campaign.bid_type,
        bid_micros=campaign.max_bid_micros,
        price_micros=price or (CPC_PRICE if campaign.bid_type == "cpc" else CPM_PRICE),
    )


def signed_in(user, *, ua: str = BROWSER, ip: str = "127.0.0.1") -> Client:
    client = Client(HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)
    client.force_login(user)
    return client


def guest(*, ip: str = "127.0.0.1", answer: str | None = "complete") -> tuple[Client, str, Conversation]:
    """A fresh cookie jar: a guest session with one conversation whose answer ended
    `answer` (None: no answer at all)."""
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=ip)
    session = client.session
    session.save()
    key = session.session_key
    session[GUEST_KEY] = key  # as the chat socket writes it for a guest
    session.save()
    conversation = Conversation.objects.create(session_key=key)
    Message.objects.create(conversation=conversation, role="user", content="Rent a GPU?")
    if answer:
        Message.objects.create(conversation=conversation, role="assistant", content="Sure.", status=answer)
    return client, key, conversation


def link(impression: Impression) -> str:
    return "/ads/c/" + tracking.click_token(impression_id=str(impression.pk), creative_id=impression.creative_id)


def money(campaign: Campaign) -> tuple[int, int, int]:
    """(ledger balance, campaign lifetime spend, spend today), in micros."""
    campaign = Campaign.objects.select_related("advertiser").get(pk=campaign.pk)
    balance = balance_micros(account_id=campaign.advertiser.balance_account_id)
    return balance, campaign.spent_micros, campaign.spent_today_micros


def reasons(**filters) -> list[tuple[str, str]]:
    return list(InvalidEvent.objects.filter(**filters).order_by("created_at", "id").values_list("kind", "reason"))


def viewer_of(impression: Impression, *, ua: str = BROWSER) -> tracking.Viewer:
    return tracking.Viewer(user_id=impression.user_id, session_key=impression.session_key, user_agent=ua)


@pytest.fixture
def cpc(db):
    campaign = CampaignFactory(bid_type="cpc", max_bid_micros=1_000_000, advertiser=AdvertiserFactory(balance_usd=10))
    return CreativeFactory(campaign=campaign, landing_url="https://shop.example/landing")


@pytest.fixture
def cpm(db):
    campaign = CampaignFactory(bid_type="cpm", max_bid_micros=5_000_000, advertiser=AdvertiserFactory(balance_usd=10))
    return CreativeFactory(campaign=campaign)


# --- the honest path -------------------------------------------------------------------


@pytest.mark.django_db
def test_one_viewable_ack_is_one_cpm_charge_and_one_valid_click_one_cpc_charge(cpc, cpm, user):
    before_cpm, before_cpc = money(cpm.campaign), money(cpc.campaign)
    client = signed_in(user)
    view = served(cpm, user=user)
    assert client.post(f"/ads/i/{view.pk}/ack", {"visible_ms": "1040"}).json() == {
        "counted": True, "valid": True, "reason": ""
    }
    balance, spent, today = money(cpm.campaign)
    assert (before_cpm[0] - balance, spent - before_cpm[1], today - before_cpm[2]) == (3_000, 3_000, 3_000)
    view.refresh_from_db()
    assert (view.is_valid, view.visible_ms, view.cost_micros) == (True, 1040, 3_000)

    shown = served(cpc, user=user)
    assert client.post(f"/ads/i/{shown.pk}/ack").status_code == 200
    assert money(cpc.campaign) == before_cpc  # a CPC campaign pays for clicks, not views
    response = client.get(link(shown))
    assert (response.status_code, response["Location"]) == (302, "https://shop.example/landing")
    balance, spent, today = money(cpc.campaign)
    assert (before_cpc[0] - balance, spent - before_cpc[1], today - before_cpc[2]) == (CPC_PRICE,) * 3
    click = Click.objects.get()
    assert (click.is_valid, click.cost_micros) == (True, CPC_PRICE)
    assert InvalidEvent.objects.count() == 0


# --- clicks -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_curl_click_with_a_browser_user_agent_and_no_cookie_on_an_impression_never_shown(cpc, user):
    impression = served(cpc, user=user)
    before = money(cpc.campaign)
    response = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR=FARM_IP).get(link(impression))
    assert (response.status_code, response["Location"]) == (302, "https://shop.example/landing")
    assert money(cpc.campaign) == before
    assert reasons() == [("click", "never_shown")]
    event = InvalidEvent.objects.get()
    assert (event.impression_id, event.campaign_id, event.advertiser_id) == (
        impression.pk, cpc.campaign_id, cpc.campaign.advertiser_id
    )
    assert event.client_hash == tracking.client_hash(FARM_IP) and len(event.client_hash) == 64
    assert FARM_IP not in str(list(InvalidEvent.objects.values()))  # never the address itself
    assert Click.objects.get().invalid_reason == "never_shown"


@pytest.mark.django_db
def test_a_click_by_anyone_but_the_viewer_is_foreign(cpc, user, other_user):
    impression = served(cpc, user=user)
    assert signed_in(user).post(f"/ads/i/{impression.pk}/ack").json()["counted"] is True
    before = money(cpc.campaign)
    assert signed_in(other_user).get(link(impression)).status_code == 302
    assert Client(HTTP_USER_AGENT=BROWSER).get(link(impression)).status_code == 302  # no cookie
    stranger, _, _ = guest()
    assert stranger.get(link(impression)).status_code == 302
    assert money(cpc.campaign) == before
    assert reasons(kind="click") == [("click", "foreign_viewer")] * 3
    # The viewer's own first click is still the one billable click.
    assert signed_in(user).get(link(impression)).status_code == 302
    assert money(cpc.campaign)[1] == before[1] + CPC_PRICE


@pytest.mark.django_db
def test_the_same_link_clicked_every_30_minutes_over_a_day_charges_once(cpc, user):
    impression = served(cpc, user=user, when=timezone.now())
    token = link(impression).removeprefix("/ads/c/")
    t0 = timezone.now()  # after the link was signed: at t0 + 60 min it is over an hour old
    viewer = viewer_of(impression)
    assert delivery.impression_acknowledge(
        impression_id=str(impression.pk), viewer=viewer, visible_ms=1000, now=t0 + timedelta(seconds=2)
    ).counted
    first = delivery.click_record(token=token, viewer=viewer, now=t0 + timedelta(seconds=20))
    assert (first.click.is_valid, first.click.cost_micros) == (True, CPC_PRICE)
    after_first = money(cpc.campaign)
    # Every 30 minutes, and once at 45 (past the 30-minute duplicate window for a viewer
    # and a creative: only the impression's one billable click makes it a duplicate).
    minutes = sorted([30 * n for n in range(1, 49)] + [45])
    results = [delivery.click_record(token=token, viewer=viewer, now=t0 + timedelta(minutes=m)) for m in minutes]
    assert {r.redirect_to for r in results} == {"https://shop.example/landing"}  # the person still gets there
    assert money(cpc.campaign) == after_first
    # Within the link's hour: duplicates; from the hour on: expired. Never a second charge.
    assert [r.click.invalid_reason for r in results] == ["duplicate"] * 2 + ["expired"] * 47
    assert Click.objects.filter(is_valid=True).count() == 1
    assert reasons(kind="click") == [("click", "duplicate")] * 2 + [("click", "expired")] * 47


@pytest.mark.django_db
def test_the_same_link_from_curl_every_30_minutes_over_a_day_charges_nothing(cpc, user):
    """The attack of issue 8: a link of an impression never shown, replayed without a cookie."""
    impression = served(cpc, user=user, when=timezone.now())
    token = link(impression).removeprefix("/ads/c/")
    t0 = timezone.now()  # after the link was signed
    before = money(cpc.campaign)
    curl = tracking.Viewer(user_id=None, session_key="", user_agent=BROWSER, client_hash=tracking.client_hash(FARM_IP))
    results = [delivery.click_record(token=token, viewer=curl, now=t0 + timedelta(minutes=30 * n)) for n in range(48)]
    assert money(cpc.campaign) == before
    assert [r.click.invalid_reason for r in results] == ["never_shown"] * 2 + ["expired"] * 46
    assert Click.objects.filter(is_valid=True).count() == 0


@pytest.mark.django_db
def test_a_bot_user_agent_charges_nothing(cpc, cpm, user):
    view, shown = served(cpm, user=user), served(cpc, user=user)
    before_cpm, before_cpc = money(cpm.campaign), money(cpc.campaign)
    bot = signed_in(user, ua=GOOGLEBOT)
    assert bot.post(f"/ads/i/{view.pk}/ack").json() == {"counted": False, "valid": False, "reason": "bot"}
    assert signed_in(user).post(f"/ads/i/{shown.pk}/ack").json()["counted"] is True
    for agent in (GOOGLEBOT, "curl/8.5.0", "python-requests/2.32", ""):
        assert signed_in(user, ua=agent).get(link(shown)).status_code == 302
    assert (money(cpm.campaign), money(cpc.campaign)) == (before_cpm, before_cpc)
    assert reasons() == [("impression", "bot")] + [("click", "bot")] * 4


@pytest.mark.django_db
def test_a_tampered_link_leads_nowhere_and_is_recorded(cpc, user):
    impression = served(cpc, user=user)
    token = link(impression).removeprefix("/ads/c/")
    response = signed_in(user).get("/ads/c/" + token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert response.status_code == 400 and "Location" not in response
    assert reasons() == [("click", "tampered")]


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_clicks_charge_once(cpc, user, settings):
    settings.RATELIMIT_ENABLE = False
    settings.ADS_DUPLICATE_CLICK_WINDOW_S = 0  # only the impression's own one-click rule stands between them
    impression = served(cpc, user=user)
    assert delivery.impression_acknowledge(impression_id=str(impression.pk), viewer=viewer_of(impression)).counted
    before = money(cpc.campaign)
    token = link(impression).removeprefix("/ads/c/")
    barrier = threading.Barrier(8)

    def click() -> bool:
        try:
            barrier.wait(timeout=10)
            return delivery.click_record(token=token, viewer=viewer_of(impression)).click.is_valid
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        valid = list(pool.map(lambda _: click(), range(8)))
    assert valid.count(True) == 1
    balance, spent, _ = money(cpc.campaign)
    assert (before[0] - balance, spent - before[1]) == (CPC_PRICE, CPC_PRICE)
    assert sorted(Click.objects.values_list("invalid_reason", flat=True)) == [""] + ["duplicate"] * 7


# --- acknowledgements ----------------------------------------------------------------------


@pytest.mark.django_db
def test_replayed_acknowledgements_charge_nothing(cpm, user):
    impression = served(cpm, user=user)
    client = signed_in(user)
    assert client.post(f"/ads/i/{impression.pk}/ack").json()["counted"] is True
    after_first = money(cpm.campaign)
    for _ in range(5):
        assert client.post(f"/ads/i/{impression.pk}/ack").json() == {
            "counted": False, "valid": False, "reason": "duplicate"
        }
    assert money(cpm.campaign) == after_first
    assert reasons() == [("impression", "duplicate")] * 5


@pytest.mark.django_db
def test_acknowledging_someone_elses_impression_charges_nothing(cpm, user, other_user):
    impression = served(cpm, user=user)
    before = money(cpm.campaign)
    assert signed_in(other_user).post(f"/ads/i/{impression.pk}/ack").status_code == 404
    stranger, _, _ = guest()
    assert stranger.post(f"/ads/i/{impression.pk}/ack").status_code == 404
    assert money(cpm.campaign) == before
    impression.refresh_from_db()
    assert impression.acknowledged_at is None  # the viewer's own acknowledgement still counts later
    assert reasons() == [("impression", "foreign_viewer")] * 2
    assert signed_in(user).post(f"/ads/i/{impression.pk}/ack").json()["counted"] is True


@pytest.mark.django_db
def test_an_acknowledgement_after_its_window_charges_nothing(cpm, user, settings):
    impression = served(cpm, user=user, when=timezone.now() - timedelta(seconds=settings.ADS_IMPRESSION_ACK_WINDOW_S + 5))
    before = money(cpm.campaign)
    assert signed_in(user).post(f"/ads/i/{impression.pk}/ack").json() == {
        "counted": False, "valid": False, "reason": "expired"
    }
    assert money(cpm.campaign) == before
    assert reasons() == [("impression", "expired")]


@pytest.mark.django_db
def test_a_click_on_an_impression_acknowledged_invalid_is_never_billed(cpc, user):
    impression = served(cpc, user=user, when=timezone.now())  # its frame just went out
    client = signed_in(user)
    assert client.post(f"/ads/i/{impression.pk}/ack").json()["reason"] == "not_viewable"
    before = money(cpc.campaign)
    assert client.get(link(impression)).status_code == 302
    assert money(cpc.campaign) == before
    assert reasons() == [("impression", "not_viewable"), ("click", "not_viewable")]


# --- rate limits ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rate_limited_bursts_get_429_or_a_free_redirect(cpc, cpm, user, settings):
    settings.ADS_RATE_PER_VIEWER = "3/m"
    client = signed_in(user)
    acks = [client.post(f"/ads/i/{served(cpm, user=user).pk}/ack") for _ in range(3)]
    assert [r.json()["counted"] for r in acks] == [True, True, True]
    before = money(cpm.campaign)
    over = client.post(f"/ads/i/{served(cpm, user=user).pk}/ack")
    assert (over.status_code, over.json()["error"]) == (429, "rate_limited")
    assert money(cpm.campaign) == before
    # Clicks count separately: three billable ones, then a redirect that is free.
    shown = []
    for _ in range(4):
        impression = served(CreativeFactory(campaign=cpc.campaign), user=user)
        Impression.objects.filter(pk=impression.pk).update(acknowledged_at=timezone.now(), is_valid=True)
        shown.append(impression)
    assert [client.get(link(i)).status_code for i in shown[:3]] == [302] * 3
    before = money(cpc.campaign)
    response = client.get(link(shown[3]))
    assert (response.status_code, response["Location"]) == (302, "https://shop.example/landing")
    assert money(cpc.campaign) == before
    assert client.post(f"/ads/i/{shown[0].pk}/feedback", {"kind": "offensive"}).status_code == 200
    for _ in range(3):
        client.post(f"/ads/i/{shown[0].pk}/feedback", {"kind": "offensive"})
    assert client.post(f"/ads/i/{shown[0].pk}/feedback", {"kind": "offensive"}).status_code == 429
    assert reasons() == [("impression", "rate_limited"), ("click", "rate_limited")]


@pytest.mark.django_db
def test_rate_limits_per_address_count_every_viewer_behind_it(cpm, settings, django_user_model):
    settings.ADS_RATE_PER_IP = "4/m"
    statuses = []
    for n in range(6):
        person = django_user_model.objects.create_user(email=f"p{n}@office.example", password="x")
        statuses.append(signed_in(person, ip=FARM_IP).post(f"/ads/i/{served(cpm, user=person).pk}/ack").status_code)
    assert statuses == [200] * 4 + [429] * 2
    assert reasons() == [("impression", "rate_limited")] * 2
    # Another address is not limited by this one.
    elsewhere = django_user_model.objects.create_user(email="home@example.org", password="x")
    assert signed_in(elsewhere, ip="198.51.100.4").post(f"/ads/i/{served(cpm, user=elsewhere).pk}/ack").status_code == 200


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(cpm, settings, django_user_model):
    settings.ADS_RATE_PER_IP = "1/m"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    statuses = []
    for n, forwarded in enumerate(["198.51.100.1", "198.51.100.2", "198.51.100.2"]):
        person = django_user_model.objects.create_user(email=f"x{n}@example.org", password="x")
        client = signed_in(person, ip="10.1.2.3")
        impression = served(cpm, user=person)
        statuses.append(client.post(f"/ads/i/{impression.pk}/ack", HTTP_X_FORWARDED_FOR=forwarded).status_code)
    assert statuses == [200, 200, 429]
    # An untrusted peer's X-Forwarded-For is ignored: it is one client, whatever it claims.
    settings.TRUSTED_PROXIES = []
    person = django_user_model.objects.create_user(email="spoof@example.org", password="x")
    spoofer = signed_in(person, ip="192.0.2.50")
    codes = [
        spoofer.post(f"/ads/i/{served(cpm, user=person).pk}/ack", HTTP_X_FORWARDED_FOR=f"198.51.100.{9 + n}").status_code
        for n in range(2)
    ]
    assert codes == [200, 429]


# --- guests ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_click_farm_of_100_cookie_jars_from_one_address_charges_nothing(cpc, cpm):
    """Each jar is a new guest session that stopped its answer at once (the cheapest way
    to be served a card), then acknowledged its card after a second and clicked it."""
    before_cpm, before_cpc = money(cpm.campaign), money(cpc.campaign)
    for n in range(100):
        jar, key, conversation = guest(ip=FARM_IP, answer="stopped")
        view = served(cpm, session_key=key, conversation=conversation)
        shown = served(CreativeFactory(campaign=cpc.campaign), session_key=key, conversation=conversation)
        assert jar.post(f"/ads/i/{view.pk}/ack").json()["reason"] == "guest_unverified", n
        jar.post(f"/ads/i/{shown.pk}/ack")
        assert jar.get(link(shown)).status_code == 302
    assert (money(cpm.campaign), money(cpc.campaign)) == (before_cpm, before_cpc)
    assert InvalidEvent.objects.filter(reason="guest_unverified", kind="impression").count() == 200
    assert InvalidEvent.objects.filter(reason="guest_unverified", kind="click").count() == 100
    assert InvalidEvent.objects.exclude(reason="guest_unverified").count() == 0
    assert Click.objects.filter(is_valid=True).count() == 0
    assert GuestViewer.objects.filter(within_cap=True).count() == 5  # the cap was spent too


@pytest.mark.django_db
def test_new_guest_sessions_per_address_are_capped(cpm, settings):
    settings.ADS_GUEST_SESSIONS_PER_IP_HOUR = 3
    before = money(cpm.campaign)
    results = []
    for _ in range(6):
        jar, key, conversation = guest(ip=FARM_IP)
        results.append(jar.post(f"/ads/i/{served(cpm, session_key=key, conversation=conversation).pk}/ack").json())
    assert [r["reason"] for r in results] == [""] * 3 + ["guest_unverified"] * 3
    assert money(cpm.campaign)[1] - before[1] == 3 * 3_000  # three impressions, exactly
    # A guest on another network is not held by this one's cap, and a capped session stays capped.
    jar, key, conversation = guest(ip="198.51.100.20")
    assert jar.post(f"/ads/i/{served(cpm, session_key=key, conversation=conversation).pk}/ack").json()["counted"]
    assert reasons() == [("impression", "guest_unverified")] * 3


@pytest.mark.django_db
def test_a_guests_impressions_count_only_after_a_complete_answer(cpm):
    jar, key, conversation = guest(answer=None)
    early = served(cpm, session_key=key, conversation=conversation)
    assert jar.post(f"/ads/i/{early.pk}/ack").json()["reason"] == "guest_unverified"
    Message.objects.create(conversation=conversation, role="assistant", content="Done.", status="complete")
    later = served(cpm, session_key=key, conversation=conversation)
    assert jar.post(f"/ads/i/{later.pk}/ack").json() == {"counted": True, "valid": True, "reason": ""}


@pytest.mark.django_db
def test_a_guest_who_logs_in_keeps_their_impression_and_its_one_click(cpc, user):
    """Login rotates the session key; the impression served to the guest is still theirs."""
    jar, key, conversation = guest()
    impression = served(cpc, session_key=key, conversation=conversation)
    assert jar.post(f"/ads/i/{impression.pk}/ack").json()["counted"] is True
    jar.force_login(user)  # rotates the session key (keeping its data)
    request = HttpRequest()
    request.session = jar.session
    user_logged_in.send(sender=type(user), request=request, user=user)  # as allauth's login sends it
    request.session.save()
    assert jar.session.session_key != key
    conversation.refresh_from_db()
    assert conversation.user_id == user.pk
    before = money(cpc.campaign)
    assert jar.get(link(impression)).status_code == 302
    assert money(cpc.campaign)[1] == before[1] + CPC_PRICE
    assert jar.get(link(impression)).status_code == 302
    assert money(cpc.campaign)[1] == before[1] + CPC_PRICE
    assert reasons() == [("click", "duplicate")]


@pytest.mark.django_db
def test_staff_read_the_invalid_traffic_in_the_admin_and_cannot_change_it(cpc, user, staff_user):
    impression = served(cpc, user=user)
    Client(HTTP_USER_AGENT=BROWSER).get(link(impression))
    admin = Client()
    admin.force_login(staff_user)
    page = admin.get("/admin/ads/invalidevent/?reason=never_shown")
    assert page.status_code == 200
    assert b"Never shown" in page.content
    assert admin.get("/admin/ads/invalidevent/add/").status_code == 403
    assert admin.get("/admin/ads/guestviewer/").status_code == 200
