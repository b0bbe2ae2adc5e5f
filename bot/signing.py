"""Signing requests exactly as Slack does (for the demo, the tests and the benchmarks)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


def signed_headers(
    secret: str,
    body: str,
    *,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature or "",
    }


def slash_command_body(
    text: str,
    *,
    user: str = "U0ONCALL",
    channel: str = "C0INCIDENT",
    response_url: str = "https://hooks.slack.com/commands/T111/1/x",
    trigger_id: str | None = None,
) -> str:
    return urlencode(
        {
            "token": "unused-verification-token",
            "team_id": "T111",
            "team_domain": "omni-test",
            "channel_id": channel,
            "channel_name": "incident",
            "user_id": user,
            "user_name": "oncall",
            "command": "/omni",
            "text": text,
            "api_app_id": "A0OMNI",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{time.time():.6f}.trigger",
        }
    )


def event_body(event: dict[str, Any], event_id: str = "Ev0001") -> str:
    return json.dumps(
        {
            "token": "unused",
            "team_id": "T111",
            "api_app_id": "A0OMNI",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
    )
