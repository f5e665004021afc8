# The chat socket's fixtures (fake upstream, tiers, members, sessions), shared with tests/assistant/.
from tests.assistant.conftest import *  # noqa: F403
from tests.assistant.conftest import _clean_redis, _fast_chat_settings, _runs_drained, _upstream_server  # noqa: F401
