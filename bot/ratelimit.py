"""A token bucket per Slack user for ``/omni``, in Redis, shared by every bot process.

Each user has ``OMNI_COMMAND_BURST`` tokens, refilled at ``OMNI_COMMAND_RATE_PER_MIN``; a
command takes one.  The bucket is one hash updated by one Lua script (atomic across replicas,
timed by the Redis server's clock, so replicas with skewed clocks agree).  A user over the
limit gets an ephemeral answer saying when to try again, and nothing is enqueued.  Without
Redis the command fails anyway (nothing can be queued), so the bucket lets it through.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

from . import keys

logger = logging.getLogger(__name__)

_TAKE = """
local per_ms = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * per_ms)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return wait
"""


class RateLimiter:
    def __init__(self, redis: Redis, per_min: float, burst: int) -> None:
        self.per_min = per_min
        self.burst = burst
        self._script = redis.register_script(_TAKE)

    def take(self, user: str) -> float:
        """0 when ``user`` may go ahead (a token is spent), else the seconds until they may."""
        if self.per_min <= 0 or not user:
            return 0.0
        try:
            wait_ms = int(
                self._script(keys=[keys.rate(user)], args=[self.per_min / 60000, self.burst])
            )
        except RedisError as exc:
            logger.warning("rate limit not checked: %s", type(exc).__name__)
            return 0.0
        return wait_ms / 1000
