"""Requests as Slack (and the alarm integrations) send them, signed as Slack signs them.

For the demo, the tests and the benchmarks; Omni's own verification is Bolt's and
``bot.server``'s, never this module.
"""

from __future__ import annotations

import json
import time
import uuid
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
            "trigger_id": trigger_id or f"{time.time():.6f}.{uuid.uuid4().hex[:12]}",
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


def chatbot_alarm_event(
    name: str,
    state: str,
    ts: str,
    channel: str,
    event_id: str,
    *,
    region: str = "us-east-1",
    account: str = "123456789012",
) -> dict[str, Any]:
    """An AWS Chatbot / Amazon Q Developer alarm post as Slack delivers it (attachments + blocks)."""
    title = f"CloudWatch Alarm | {name} | {region} | Account: {account}"
    return {
        "token": "unused",
        "team_id": "T111",
        "api_app_id": "A0OMNI",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "text": "",
            "bot_id": "B0AWSCHATB",
            "app_id": "A0AWSCHATB",
            "ts": ts,
            "event_ts": ts,
            "channel": channel,
            "bot_profile": {"id": "B0AWSCHATB", "name": "aws", "app_id": "A0AWSCHATB"},
            "attachments": [
                {
                    "fallback": title,
                    "color": "d13212" if state == "ALARM" else "2eb886",
                    "blocks": [
                        {
                            "type": "section",
                            "text": {"type": "mrkdwn", "text": f":rotating_light: *{title}*"},
                        },
                        {
                            "type": "section",
                            "fields": [
                                {"type": "mrkdwn", "text": f"*Alarm Name*\n{name}"},
                                {"type": "mrkdwn", "text": f"*Alarm State*\n{state}"},
                            ],
                        },
                    ],
                }
            ],
        },
    }


def block_actions_body(
    user: str,
    channel: str,
    message_ts: str,
    thread_ts: str,
    button: dict[str, Any],
    **action: Any,
) -> str:
    """A button click as Slack sends it: ``payload=<url-encoded JSON>`` (``action``: extra
    fields of the action, e.g. what a forger would add)."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T111"},
        "user": {"id": user},
        "api_app_id": "A0OMNI",
        "token": "unused",
        "trigger_id": f"{time.time():.6f}.{uuid.uuid4().hex[:12]}",
        "channel": {"id": channel},
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
            "thread_ts": thread_ts,
        },
        "message": {"ts": message_ts, "thread_ts": thread_ts},
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": button.get("block_id", "fix-0"),
                "value": button["value"],
                "type": "button",
                "action_ts": str(time.time()),
                **action,
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
