"""Demo data: an advertiser with a funded balance and approved, active campaigns on
varied topics, loaded from ads/fixtures/demo.json through the import code. The demo
staff user (accounts.seed), when present, is its owner, so the dashboard has data."""

from __future__ import annotations

import json
from pathlib import Path

from ads.models import Advertiser, AdvertiserMembership
from ads.services.campaigns import advertiser_member_add
from ads.services.importing import ads_import_file

DEMO_FILE = Path(__file__).resolve().parent / "fixtures" / "demo.json"


def seed_demo(*, stdout) -> None:
    from accounts.models import User
    from accounts.seed import DEMO_STAFF_EMAIL

    report = ads_import_file(path=DEMO_FILE, auto_approve=True)
    stdout.write(f"Ads demo: {report.summary()}")
    staff = User.objects.filter(email=DEMO_STAFF_EMAIL).first()
    if staff is not None:
        for item in json.loads(DEMO_FILE.read_text())["advertisers"]:
            advertiser = Advertiser.objects.get(name=item["name"])
            advertiser_member_add(advertiser=advertiser, user=staff, role=AdvertiserMembership.Role.OWNER)
            stdout.write(f"Ads demo: {DEMO_STAFF_EMAIL} is an owner of {advertiser.name}")
