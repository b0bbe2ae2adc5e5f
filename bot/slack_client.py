"""The Slack Web API client every Omni process uses: retries on 429, 5xx and connection errors."""

from __future__ import annotations

import logging
import threading
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
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


class TokenCheck:
    """The bot token checked against Slack (``auth.test``) in the background, with backoff.

    ``omni serve`` must start while Slack's API is unreachable: ``/sns`` and ``/pagerduty``
    need no Slack to accept an alarm and queue it, and an alarm lost because Slack was down at
    start is the worst kind.  So Bolt does not call ``auth.test`` at start; this thread does,
    retrying every 1, 2, 4 … 60 s, and hands the answer to Bolt's authorization once it has it
    (so a command does not pay for it).  A token Slack refuses (``invalid_auth``) is logged as
    an error once and not retried: that needs a person, not a loop.
    """

    BACKOFF_S = (1, 2, 4, 8, 16, 30, 60)

    def __init__(self, client: WebClient, on_result: Any = None) -> None:
        self.client = client
        self.on_result = on_result
        self.state = "unchecked"  # unchecked | ok | refused | unreachable
        self.detail = ""
        self._stop = threading.Event()

    def start(self) -> TokenCheck:
        threading.Thread(target=self.run, name="omni-slack-token", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                result = self.client.auth_test()
            except SlackApiError as exc:
                error = str(exc.response.get("error", ""))
                if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
                    self.state, self.detail = "refused", error
                    logger.error("Slack refused the bot token (%s): check SLACK_BOT_TOKEN", error)
                    return
                self.state, self.detail = "unreachable", error or "error"
            except Exception as exc:  # connection refused, timeouts (after the client's retries)
                self.state, self.detail = "unreachable", type(exc).__name__
            else:
                self.state, self.detail = "ok", str(result.get("team_id", ""))
                logger.info("Slack token checked: team %s", self.detail)
                if self.on_result is not None:
                    self.on_result(result)
                return
            wait = self.BACKOFF_S[min(attempt, len(self.BACKOFF_S) - 1)]
            logger.warning(
                "Slack's API unreachable (%s): serving anyway, token checked again in %s s",
                self.detail,
                wait,
            )
            attempt += 1
            self._stop.wait(wait)
