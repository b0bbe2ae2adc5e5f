"""At most about one message a second per channel, across every Omni process (Slack's limit).

Two steps per ``chat.postMessage``, each an atomic Lua script on Redis's own clock (pods' clocks
may differ; Redis's is one):

1. **reserve** the channel's next free slot and sleep until it: posts queue up in order and are
   spread out, never dropped;
2. **admit** just before the request leaves: at least the interval since the channel's last
   admitted post, or wait again.  A reservation alone spaces the *wake-ups*, not the sends: in
   a storm on two cores a thread woke 2 s late and three posts left together (CI, 2026-11-29:
   three arrivals within 10 ms).  The gate makes the spacing hold whatever the scheduler does;
   an admitted post also pushes the next free slot behind it.

Without Redis (or when it keeps failing) the pacing is per process.  Each post is logged at
DEBUG with its wait and Redis's time of admission (``OMNI_LOG_LEVEL=debug``).
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

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

_RESERVE = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nxt)
redis.call('SET', KEYS[1], slot + interval, 'PX', 120000)
return slot - now
"""
)

# KEYS[1] the last admission, KEYS[2] the next free slot; returns {admitted, ms (when, or wait)}
_ADMIT = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < last + interval then return {0, last + interval - now} end
redis.call('SET', KEYS[1], now, 'PX', 120000)
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
if nxt < now + interval then redis.call('SET', KEYS[2], now + interval, 'PX', 120000) end
return {1, now}
"""
)

RESERVE_TRIES = 3
ADMIT_ROUNDS = 50  # each waits out the rest of an interval: a bound, never reached in practice


class Pacer:
    def __init__(self, redis: Redis | None, interval_ms: int = 1000) -> None:
        self.redis = redis
        self.interval_ms = interval_ms
        self._reserve = redis.register_script(_RESERVE) if redis is not None else None
        self._admit = redis.register_script(_ADMIT) if redis is not None else None
        self._local: dict[str, float] = {}
        self._warned = False
        self._lock = threading.Lock()

    def _run(self, script: Any, channel_keys: list[str]) -> Any:
        """The script's answer, or None once Redis has failed ``RESERVE_TRIES`` times."""
        # a Redis that is only slow (a storm on two cores: its 0.5 s timeout) is tried again
        # before pacing falls back to this process alone, where two processes could burst
        for attempt in range(RESERVE_TRIES if script is not None else 0):
            try:
                return script(keys=channel_keys, args=[self.interval_ms])
            except RedisError as exc:
                if attempt < RESERVE_TRIES - 1:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                if not self._warned:
                    logger.warning(
                        "pacing per process: Redis cannot run the pacing script (%s)",
                        type(exc).__name__,
                    )
                    self._warned = True
        return None

    def reserve(self, channel: str) -> float:
        """Seconds to wait before posting in ``channel`` (its slot is taken)."""
        wait_ms = self._run(self._reserve, [keys.pace(channel)])
        if wait_ms is not None:
            return max(0.0, int(wait_ms) / 1000)
        now_ms = time.time() * 1000
        with self._lock:
            local_slot = max(now_ms, self._local.get(channel, 0.0))
            self._local[channel] = local_slot + self.interval_ms
        return max(0.0, (local_slot - now_ms) / 1000)

    def admit(self, channel: str) -> tuple[bool, float]:
        """``(True, when)`` when a post may leave now (``when`` in Redis's seconds, recorded), or
        ``(False, seconds)`` to wait first.  Without Redis every post is admitted."""
        answer = self._run(self._admit, [keys.pace_sent(channel), keys.pace(channel)])
        if answer is None:
            return True, time.time()
        admitted, ms = int(answer[0]), int(answer[1])
        return (True, ms / 1000) if admitted else (False, ms / 1000)

    def wait_turn(self, channel: str) -> None:
        """Sleep until ``channel`` may take a post, and take it."""
        waited = self.reserve(channel)
        if waited > 0:
            time.sleep(waited)
        for _ in range(ADMIT_ROUNDS):
            admitted, value = self.admit(channel)
            if admitted:
                logger.debug(
                    "chat.postMessage to %s admitted at %.3f after %.3f s", channel, value, waited
                )
                return
            time.sleep(value)
            waited += value
        logger.warning("pacing: %s not admitted after %s rounds; posting", channel, ADMIT_ROUNDS)


class PacedWebClient(WebClient):
    """A WebClient whose ``chat.postMessage`` waits for the channel's turn."""

    pacer: Pacer | None = None

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        if api_method == "chat.postMessage" and self.pacer is not None:
            body = kwargs.get("json") or kwargs.get("params") or kwargs.get("data") or {}
            channel = body.get("channel") if isinstance(body, dict) else None
            if channel:
                self.pacer.wait_turn(str(channel))
        return super().api_call(api_method, **kwargs)
