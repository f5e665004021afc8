"""Demo data: an advertiser with a funded balance and approved, active campaigns on
varied topics, loaded from ads/fixtures/demo.json through the import code."""

from __future__ import annotations

from pathlib import Path

from ads.services_import import ads_import_file

DEMO_FILE = Path(__file__).resolve().parent / "fixtures" / "demo.json"


def seed_demo(*, stdout) -> None:
    report = ads_import_file(path=DEMO_FILE, auto_approve=True)
    stdout.write(f"Ads demo: {report.summary()}")
