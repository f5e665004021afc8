"""python manage.py ads_preview [--json] [--advertiser ID] "conversation text": the ad
decision for a conversation, with the score breakdown and price, or why no ad."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from ads.services.decision import ad_preview


class Command(BaseCommand):
    help = "Show which ad (if any) a conversation would get, with scores and the price."

    def add_arguments(self, parser) -> None:
        parser.add_argument("text", help="the conversation text")
        parser.add_argument("--json", action="store_true", help="print the decision as JSON")
        parser.add_argument("--advertiser", type=int, default=None, help="only this advertiser's campaigns")
        parser.add_argument("--language", default="en")

    def handle(self, *args, **options) -> None:
        result = ad_preview(text=options["text"], advertiser_id=options["advertiser"], language=options["language"])
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
            return
        ad = result["ad"]
        if ad is None:
            self.stdout.write(f"No ad: {result['reason_text'] or result['reason']}")
            if result.get("sensitive"):
                self.stdout.write(f"  sensitive topic: {result['sensitive']}")
        else:
            price = result["auction"]
            self.stdout.write(f"Ad: {ad['headline']} ({ad['advertiser']}, campaign {ad['campaign']!r})")
            self.stdout.write(
                f"  price: ${price['price_micros'] / 1e6:.4f} {price['price_unit']} "
                f"(bid ${price['bid_micros'] / 1e6:.4f}, reserve ${price['reserve_micros'] / 1e6:.4f})"
            )
            self.stdout.write(f"  why: {ad['why']['explanation']}")
        for cand in result["candidates"]:
            self.stdout.write(
                f"  - {cand['campaign']} ({cand['advertiser']}): relevance {cand['relevance']:.2f} (similarity {cand['similarity']:.2f}, "
                f"keywords {cand['matched_keywords']}), pCTR {cand['predicted_ctr']:.4f}, score {cand['score']:.1f}"
                + (f", excluded: {cand['excluded']}" if cand["excluded"] else "")
            )
