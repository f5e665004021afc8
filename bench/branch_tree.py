"""The message tree's cost (assistant.branches): reading a long, branched conversation's
active branch (what the chat page, the prompt and the Markdown export read) and switching
to another version, against the plain read of its messages that the page paid before
branches. Everything is written in one transaction that is rolled back: the database
(migrated, as after `make run`) is left as it was. Results: bench/results/branch_tree.json.

    python -m bench branch_tree
"""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "branch_tree.json"
TURNS = 200
REGENERATED_EVERY = 10  # every tenth answer has three versions
REPEAT = 30


def _timed(fn) -> dict:
    samples = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}


def main() -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from assistant.branches import branch_active, branch_switch
    from assistant.models import Conversation, Message

    with transaction.atomic():
        user = get_user_model().objects.create_user(email="bench-branches@example.invalid", password=None)
        conversation = Conversation.objects.create(user=user)
        now = timezone.now()
        rows, previous, n = [], None, 0
        for turn in range(TURNS):
            question = Message(conversation=conversation, role="user", content=f"question {turn} " * 20,
                               parent=previous, created_at=now + timedelta(microseconds=n))
            n += 1
            rows.append(question)
            versions = []
            for version in range(3 if turn % REGENERATED_EVERY == 0 else 1):
                answer = Message(conversation=conversation, role="assistant", content=f"answer {turn}.{version} " * 60,
                                 parent=question, created_at=now + timedelta(microseconds=n))
                n += 1
                rows.append(answer)
                versions.append(answer)
            previous = versions[0]
        Message.objects.bulk_create(rows)
        Conversation.objects.filter(pk=conversation.pk).update(active_leaf=previous)
        conversation.refresh_from_db()
        old_version = next(m for m in rows if m.content.startswith(f"answer {TURNS // 2}.2 "))
        results = {
            "benchmark": "branch_tree",
            "database": connection.vendor,
            "messages": len(rows),
            "active_branch_messages": len(branch_active(conversation=conversation)),
            "plain_read": _timed(lambda: list(conversation.messages.select_related("tier").order_by("created_at"))),
            "branch_active": _timed(lambda: branch_active(conversation=conversation)),
            "branch_switch": _timed(lambda: branch_switch(conversation=conversation, message_id=str(old_version.pk))),
        }
        transaction.set_rollback(True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2), flush=True)
    return results


if __name__ == "__main__":
    main()
