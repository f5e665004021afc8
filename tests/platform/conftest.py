"""The chat fixtures of tests/assistant (a fake model server, a tier, a signed-in member)
for the operations tests, which run real processes around them."""

from tests.assistant.conftest import (  # noqa: F401
    _clean_redis,
    _fast_chat_settings,
    _upstream_server,
    free_plan,
    member,
    member_session,
    tier,
    upstream,
)
