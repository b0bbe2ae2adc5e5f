"""Approve-to-fix end to end: signed block_actions at `omni serve`, a worker process, moto."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import requests
from redis import Redis

from sandbox import Stack, apply_scenario
from sandbox.fakeslack import FakeSlack
from sandbox.requests import signed_headers, slash_command_body

from .e2e import aws_env
from .helpers import clean_env, free_port, process, slack_env, wait_http

pytestmark = pytest.mark.slow
SECRET = "fix-e2e-signing-secret"
CHANNEL = "C0INCIDENT"
BINDINGS = json.dumps({"operator": ["U0OPERATOR"], "admin": ["U0ADMIN"]})


def click(port: int, user: str, button: dict[str, Any], message_ts: str, thread_ts: str) -> int:
    payload = {
        "type": "block_actions",
        "team": {"id": "T111", "domain": "omni-test"},
        "user": {"id": user, "username": user},
        "api_app_id": "A0OMNI",
        "token": "unused",
        "trigger_id": f"{time.time()}.{uuid.uuid4().hex}",  # unique per click, as on Slack
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": CHANNEL,
            "is_ephemeral": False,
            "thread_ts": thread_ts,
        },
        "channel": {"id": CHANNEL, "name": "incident"},
        "message": {"ts": message_ts, "thread_ts": thread_ts, "type": "message"},
        "response_url": "https://hooks.slack.com/actions/T111/1/x",
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": "fix-0",
                "value": button["value"],
                "type": "button",
                "action_ts": str(time.time()),
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    return int(
        requests.post(
            f"http://127.0.0.1:{port}/slack/events",
            data=body,
            headers=signed_headers(SECRET, body),
            timeout=10,
        ).status_code
    )


def _button(fake_slack: FakeSlack, fix_id: str) -> tuple[dict[str, Any], str]:
    """The fix's button and the ts of the message holding it (the verdict, an edit of the
    thread's root, holds the root cause's buttons; the details hold the rest)."""
    for call in fake_slack.find("chat.update") + fake_slack.find("chat.postMessage"):
        for block in call.body.get("blocks") or []:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element["action_id"].startswith(f"remediate:{fix_id}"):
                    ts = next(
                        ts
                        for (c, ts), m in fake_slack.messages.items()
                        if c == CHANNEL and m.get("blocks") == call.body["blocks"]
                    )
                    return element, ts
    raise AssertionError(f"no {fix_id} button posted")


def _ephemerals(fake_slack: FakeSlack, user: str) -> list[str]:
    return [c.text for c in fake_slack.find("chat.postEphemeral", user=user)]


def _status(stack: Stack) -> str:
    rds = boto3.client("rds", region_name="us-east-1", endpoint_url=stack.extra["endpoint"])
    return str(
        rds.describe_db_clusters(DBClusterIdentifier=stack.names.aurora_cluster)["DBClusters"][0][
            "Status"
        ]
    )


def test_start_the_stopped_cluster_from_slack(
    served_stack: Stack, fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> None:
    apply_scenario("aurora-stopped", served_stack)
    port = free_port()
    env = slack_env(fake_slack, redis_url, "xoxb-fix-e2e", SECRET, OMNI_ROLE_BINDINGS=BINDINGS)
    with (
        process(
            ["worker"],
            clean_env(**env, **aws_env(served_stack), OMNI_HEALTH_PORT="0"),
            tmp_path / "worker.log",
        ),
        process(
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            clean_env(**env),
            tmp_path / "serve.log",
        ),
    ):
        wait_http(f"http://127.0.0.1:{port}/healthz")
        body = slash_command_body(
            "diagnose db",
            channel=CHANNEL,
            response_url=fake_slack.url.replace("/api/", "/response/1"),
        )
        requests.post(
            f"http://127.0.0.1:{port}/slack/events",
            data=body,
            headers=signed_headers(SECRET, body),
            timeout=10,
        )
        root_ts = fake_slack.wait_for(lambda: fake_slack.roots(CHANNEL), timeout=15)[0]["ts"]
        fake_slack.wait_for(lambda: fake_slack.find("chat.update", ts=root_ts), timeout=60)
        button, message_ts = _button(fake_slack, "rds.start_cluster")
        assert "DBClusterIdentifier" not in button["value"]  # a reference, never the parameters
        assert button["confirm"]["text"]["text"].startswith("In *production*")

        # a viewer: refused, nothing changes in AWS
        assert click(port, "U0VIEWER", button, message_ts, root_ts) == 200
        fake_slack.wait_for(lambda: _ephemerals(fake_slack, "U0VIEWER"), timeout=10)
        assert "needs the *operator* role" in _ephemerals(fake_slack, "U0VIEWER")[0]
        # a tampered value: refused
        forged = {**button, "value": button["value"][:-4] + "abcd"}
        assert click(port, "U0OPERATOR", forged, message_ts, root_ts) == 200
        fake_slack.wait_for(lambda: _ephemerals(fake_slack, "U0OPERATOR"), timeout=10)
        assert "does not match any plan" in _ephemerals(fake_slack, "U0OPERATOR")[0]
        time.sleep(0.5)
        assert _status(served_stack) == "stopped"

        # twenty concurrent clicks by operators: one execution
        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(
                pool.map(
                    lambda _: click(port, "U0OPERATOR", button, message_ts, root_ts), range(20)
                )
            )
        assert codes == [200] * 20
        verification = fake_slack.wait_for(
            lambda: [
                c
                for c in fake_slack.find("chat.postMessage")
                if c.thread_ts == root_ts and "Verification" in c.text
            ],
            timeout=60,
        )
        assert (
            "`db.cluster_status` is now *ok*: Aurora cluster and its 2 instance(s) are available"
            in verification[0].text
        )
        time.sleep(1.5)
        started = [
            c
            for c in fake_slack.find("chat.postMessage")
            if c.thread_ts == root_ts and "Started" in c.text
        ]
        assert len(started) == 1
        assert (
            '`Status`: "stopped" → "available"' in started[0].text
            and "<@U0OPERATOR>" in started[0].text
        )
        assert _status(served_stack) == "available"
        # the button was replaced by a note
        assert any(
            "approved by" in json.dumps(c.body.get("blocks"))
            for c in fake_slack.find("chat.update", ts=message_ts)
        )
        # replaying the button later: refused
        before = len(_ephemerals(fake_slack, "U0ADMIN"))
        click(port, "U0ADMIN", button, message_ts, root_ts)
        fake_slack.wait_for(lambda: len(_ephemerals(fake_slack, "U0ADMIN")) > before, timeout=10)
        assert "already succeeded" in _ephemerals(fake_slack, "U0ADMIN")[-1]

    audit = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in Redis.from_url(redis_url).xrange("omni:audit")
    ]
    events = [(a["event"], a["user"], a["outcome"]) for a in audit]
    assert ("executed", "U0OPERATOR", "succeeded") in events
    assert any(e == "verified" for e, _, _ in events)
    assert any(e == "refused" and u == "U0VIEWER" for e, u, _ in events)
    assert sum(1 for e, _, _ in events if e == "approved") == 1
    assert Redis.from_url(redis_url).ttl("omni:audit") == -1  # the audit stream never expires
