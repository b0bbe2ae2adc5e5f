"""The Slack Web API client every Omni process uses: retries on 429, 5xx and connection errors."""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from commands.settings import Settings

from .pacing import PacedWebClient, Pacer

logger = logging.getLogger(__name__)


class _CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """Slack's own 429 handling (waits Retry-After), counted in the metrics."""

    def _can_retry(
        self, *, state: Any, request: Any, response: Any = None, error: Any = None
    ) -> bool:
        can = bool(super()._can_retry(state=state, request=request, response=response, error=error))
        if response is not None and response.status_code == 429:
            from . import metrics

            metrics.SLACK_RATELIMITED.inc()
            logger.warning("Slack answered 429; retrying after Retry-After")
        return can


def make_web_client(
    settings: Settings, *, token: str | None = None, redis: Redis | None = None
) -> WebClient:
    """A WebClient on ``OMNI_SLACK_API_URL`` that waits out ``Retry-After``, retries 5xx, and
    (with ``redis``) paces ``chat.postMessage`` to about one a second per channel."""
    if token is None and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    base_url = settings.slack_api_url
    if not base_url.endswith("/"):
        base_url += "/"
    client = PacedWebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=3),
            _CountingRateLimitHandler(max_retry_count=5),
            ServerErrorRetryHandler(max_retry_count=3),
        ],
        logger=logger,
    )
    if redis is not None and settings.post_interval_ms > 0:
        client.pacer = Pacer(redis, settings.post_interval_ms)
    return client
