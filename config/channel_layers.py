"""The Redis channel layer, on a bounded pool that waits.

channels_redis builds a plain redis-py pool per event loop, which allows 100 connections
and then raises `MaxConnectionsError` instead of waiting: a hundred sockets closing at
once (each `group_discard` takes a connection) failed. This layer takes the same
`hosts` entries and builds a `BlockingConnectionPool` from them: `max_connections` is
the bound per process and loop, POOL_TIMEOUT_S how long a command waits for a free one
(not a `hosts` key: the entries stay valid for channels_redis's own layer).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from channels_redis.core import RedisChannelLayer

POOL_TIMEOUT_S = 20.0


class BoundedRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and the like: channels_redis's own pool
            return super().create_pool(index)
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), timeout=POOL_TIMEOUT_S, **host)
