"""Matching quality on a labelled set (tests/ads/data): on-topic conversations get the
right campaign, sensitive and off-topic ones get no ad."""

from __future__ import annotations

import pytest

from ads.services import ads_preview

# The bar: at least 90% of all labelled conversations decided correctly, and no ad
# at all on a sensitive conversation (showing one there is the failure that matters:
# a wrong or missing ad on an on-topic conversation only costs revenue).
MIN_ACCURACY = 0.90
MIN_PRECISION = 0.95


@pytest.mark.django_db
def test_labelled_set_precision(labelled_campaigns, labelled_conversations, capsys):
    correct = shown = shown_right = 0
    wrong: list[str] = []
    per_kind: dict[str, list[int]] = {}
    for conv in labelled_conversations:
        result = ads_preview(text=conv["text"])
        got = result["ad"]["campaign"] if result["ad"] else None
        ok = got == conv["expected"]
        correct += ok
        if got is not None:
            shown += 1
            shown_right += ok
        per_kind.setdefault(conv["kind"], [0, 0])
        per_kind[conv["kind"]][0] += ok
        per_kind[conv["kind"]][1] += 1
        if not ok:
            wrong.append(
                f"{conv['kind']}: {conv['text']!r} expected {conv['expected']!r}, got {got!r} ({result['reason']})"
            )
        if conv["kind"] == "sensitive":
            assert got is None, f"an ad on a sensitive conversation: {conv['text']!r} -> {got!r}"
    accuracy = correct / len(labelled_conversations)
    precision = shown_right / shown if shown else 0.0
    with capsys.disabled():
        print(
            f"\nads matching: accuracy {accuracy:.3f} ({correct}/{len(labelled_conversations)}), "
            f"precision of shown ads {precision:.3f} ({shown_right}/{shown})"
        )
        for kind, (ok, total) in per_kind.items():
            print(f"  {kind}: {ok}/{total}")
        for line in wrong:
            print("  miss:", line)
    assert accuracy >= MIN_ACCURACY
    assert precision >= MIN_PRECISION
