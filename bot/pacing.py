"""At most about one message a second per channel, across every Omni process (Slack's limit).

Each ``chat.postMessage`` reserves the channel's next free slot in Redis (an atomic Lua script)
and waits for it: posts are queued and spread out, never dropped.  Without Redis the pacing is
per process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from . import keys

logger = logging.getLogger(__name__)

_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
redis.call('SET', KEYS[1], slot + interval, 'PX', 120000)
return slot
"""


RESERVE_TRIES = 3


class Pacer:
    def __init__(self, redis: Redis | None, interval_ms: int = 1000) -> None:
        self.redis = redis
        self.interval_ms = interval_ms
        self._script = redis.register_script(_RESERVE) if redis is not None else None
        self._local: dict[str, float] = {}
        self._warned = False
        self._lock = threading.Lock()

    def reserve(self, channel: str) -> float:
        """Seconds to wait before posting in ``channel``."""
        now_ms = int(time.time() * 1000)
        # a Redis that is only slow (a storm on two cores: its 0.5 s timeout) is tried again
        # before pacing falls back to this process alone, where two processes could burst
        for attempt in range(RESERVE_TRIES if self._script is not None else 0):
            try:
                assert self._script is not None
                slot = int(self._script(keys=[keys.pace(channel)], args=[now_ms, self.interval_ms]))
                return max(0.0, (slot - now_ms) / 1000)
            except RedisError as exc:
                if attempt < RESERVE_TRIES - 1:
                    time.sleep(0.05 * (attempt + 1))
                    now_ms = int(time.time() * 1000)
                    continue
                if not self._warned:
                    logger.warning(
                        "pacing per process: Redis cannot run the pacing script (%s)",
                        type(exc).__name__,
                    )
                    self._warned = True
        with self._lock:
            local_slot = max(float(now_ms), self._local.get(channel, 0.0))
            self._local[channel] = local_slot + self.interval_ms
        return max(0.0, (local_slot - now_ms) / 1000)


class PacedWebClient(WebClient):
    """A WebClient whose ``chat.postMessage`` waits for the channel's turn."""

    pacer: Pacer | None = None

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        if api_method == "chat.postMessage" and self.pacer is not None:
            body = kwargs.get("json") or kwargs.get("params") or kwargs.get("data") or {}
            channel = body.get("channel") if isinstance(body, dict) else None
            if channel:
                wait = self.pacer.reserve(str(channel))
                if wait > 0:
                    time.sleep(wait)
        return super().api_call(api_method, **kwargs)
