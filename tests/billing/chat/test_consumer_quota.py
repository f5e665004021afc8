"""Quotas at the chat socket: the real consumer with billing's real entitlements and quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from assistant.models import Conversation
from billing.entitlements import entitlements_for
from billing.models import Plan
from billing.quotas import quota_usage_today
from tests.assistant.conftest import chat_requests, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]


def send_frame(*, tier="llama-3.1-8b") -> dict:
    return {"type": "message.send", "client_id": "c1", "conversation_id": None, "content": "Hello there", "tier": tier}


async def test_over_the_daily_budget_an_error_frame_and_nothing_generated(upstream, tier, member, sessions):
    await sync_to_async(Plan.objects.filter(slug="free").update)(daily_tokens=50)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    error = await socket.recv()
    await socket.close()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert (error["type"], error["code"], error["upgrade_url"]) == ("error", "daily_tokens", "/billing/pricing")
    assert datetime.fromisoformat(error["reset_at"]) == datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    assert chat_requests(upstream) == []
    assert await sync_to_async(Conversation.objects.count)() == 0


async def test_a_free_user_cannot_open_a_405b_run_by_crafting_a_frame(upstream, tier, big_tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame(tier="llama-3.1-405b"))
    error = await socket.recv()
    await socket.close()
    assert (error["code"], error["upgrade_url"]) == ("tier_locked", "/billing/pricing")
    assert chat_requests(upstream) == []


async def test_usage_settles_to_the_real_token_counts_after_a_run(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done", "error")
    await socket.close()
    done = frames[-1]
    assert done["type"] == "done"
    used = done["usage"]["prompt_tokens"] + done["usage"]["completion_tokens"]
    assert used > 0

    def usage():
        return quota_usage_today(subject=f"user:{member.pk}", entitlements=entitlements_for(user=member))

    today = await sync_to_async(usage)()
    assert (today.tokens_used, today.tokens_reserved, today.active_runs) == (used, 0, 0)
