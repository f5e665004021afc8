"""The chat fixtures of tests/assistant (a fake model server, a tier, a signed-in member, a
matching ad campaign) and billing's webhook secret, for the metrics and logging tests."""

from tests.assistant.conftest import (  # noqa: F401
    _clean_redis,
    _fast_chat_settings,
    _runs_drained,
    _upstream_server,
    free_plan,
    member,
    tier,
    upstream,
)
from tests.assistant.test_ads_in_chat import gpu_ad  # noqa: F401
from tests.billing.conftest import webhook_secret  # noqa: F401
