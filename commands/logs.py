"""Structured logs: one JSON object a line, with request, job and thread ids; secrets redacted.

``bind(request_id=…, job_id=…, thread_ts=…)`` puts ids on every line logged in that context
(thread or task).  The redaction filter replaces the process's secret values (tokens, signing
secrets, passwords in URLs) wherever they appear, and Slack-token and URL-password shapes even
when Omni does not know the value.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("omni_log_context", default={})  # noqa: B039
_SHAPES = (
    (re.compile(r"xox[abposer]-[A-Za-z0-9-]{6,}"), "xox?-***"),
    (re.compile(r"xapp-[A-Za-z0-9-]{6,}"), "xapp-***"),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), r"\1***@"),
    (re.compile(r"(?i)(password|passwd|secret|token)(\s*[=:]\s*)[^\s,;&]+"), r"\1\2***"),
)


@contextlib.contextmanager
def bind(**ids: Any) -> Iterator[None]:
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    for rx, replacement in _SHAPES:
        text = rx.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_CONTEXT.get(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str)


def secret_values(settings: Any) -> list[str]:
    values: list[str] = []
    for name in (
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "pagerduty_webhook_secret",
        "redis_url",
    ):
        secret = getattr(settings, name, None)
        if secret is not None:
            value = secret.get_secret_value()
            if name == "redis_url":
                match = re.search(r"://[^:/@]*:([^@/]+)@", value)
                value = match.group(1) if match else ""
            values.append(value)
    return [v for v in values if v]


OMNI_LOGGERS = ("bot", "workers", "commands")


def configure(
    settings: Any = None, level: int = logging.INFO, fmt: str = "json", own: str | None = None
) -> None:
    """Log to stderr at ``level``, secrets redacted; ``own`` (``OMNI_LOG_LEVEL`` in the two
    processes) sets Omni's own loggers only: botocore at debug would drown them."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.addFilter(RedactFilter(secret_values(settings) if settings is not None else ()))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in OMNI_LOGGERS:
        logging.getLogger(name).setLevel(own.upper() if own else logging.NOTSET)
