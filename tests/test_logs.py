from __future__ import annotations

import io
import json
import logging

from pydantic import SecretStr

from commands import logs
from commands.settings import Settings


def _capture(settings: Settings) -> tuple[logging.Logger, io.StringIO]:
    logs.configure(settings)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.stream = stream  # type: ignore[attr-defined]
    log = logging.getLogger("omnilogs.test")
    log.setLevel(logging.INFO)  # independent of levels other tests left on shared loggers
    return log, stream


def test_json_lines_with_ids_and_secrets_redacted() -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-111-222-secretvalue"),
        slack_signing_secret=SecretStr("sig-3f9a8b7c6d"),
        redis_url=SecretStr("rediss://default:r3d1s-pa55@cache.example:6379/0"),
    )
    log, stream = _capture(settings)
    try:
        with logs.bind(request_id="req-1", job_id="job-9", thread_ts="1700.01"):
            log.info(
                "posting with %s and signature %s to %s",
                "xoxb-111-222-secretvalue",
                "sig-3f9a8b7c6d",
                "rediss://default:r3d1s-pa55@cache.example:6379/0",
            )
            log.warning("unknown token xoxp-999-888-777 and postgresql://app:hunter2@db:5432/x")
        try:
            raise RuntimeError("connect failed for password=hunter2")
        except RuntimeError:
            log.exception("boom")
    finally:
        logging.getLogger().handlers = []
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (
        lines[0]["request_id"] == "req-1"
        and lines[0]["job_id"] == "job-9"
        and lines[0]["thread_ts"] == "1700.01"
    )
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "omnilogs.test"
    assert "job_id" not in lines[2]  # the context ended
    text = stream.getvalue()
    for secret in (
        "xoxb-111-222-secretvalue",
        "sig-3f9a8b7c6d",
        "r3d1s-pa55",
        "xoxp-999-888-777",
        "hunter2",
    ):
        assert secret not in text, secret
    assert "***" in lines[0]["msg"] and "exc" in lines[2]
