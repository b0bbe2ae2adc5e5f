"""Every thread offers its fixes, whatever the number of reports: one plan per fix and target,
no duplicate buttons, the root cause's first and in the verdict (issue 16)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import SecretStr
from redis import Redis

from bot.plans import PlanStore, plan_key
from bot.slack_client import make_web_client
from commands.aws import ClientPool
from commands.settings import Settings
from sandbox import Stack, apply_scenario
from sandbox.fakeslack import FakeSlack
from workers import jobs
from workers.runtime import Runtime, set_runtime

from .scenario_runs import settings_for

TOKEN = "xoxb-offers"


@pytest.fixture
def runtime(
    stack: Stack, fake_slack: FakeSlack, redis_url: str, settings: Settings
) -> Iterator[Runtime]:
    s = settings_for(settings, stack).model_copy(
        update={
            "slack_bot_token": SecretStr(TOKEN),
            "slack_api_url": fake_slack.url,
            # the stack's Terraform outputs, read from its state object as a worker does
            "terraform_outputs": stack.extra["state_url"],
        }
    )
    redis = Redis.from_url(redis_url)
    rt = Runtime(
        settings=s,
        pool=ClientPool(boto3.session.Session(), max_attempts=2),
        slack=make_web_client(s),
        redis=redis,
        plans=PlanStore(redis, plan_key(TOKEN), s.plan_ttl_s),
    )
    set_runtime(rt)
    yield rt
    set_runtime(None)


def _buttons(fake_slack: FakeSlack, root: str) -> list[tuple[str, dict[str, Any]]]:
    """Every fix button in the thread, with where it is: "verdict" or "details"."""
    found = []
    calls = [("verdict", c) for c in fake_slack.find("chat.update", ts=root)] + [
        ("details", c) for c in fake_slack.find("chat.postMessage") if c.thread_ts == root
    ]
    for where, call in calls:
        for block in call.body.get("blocks") or []:
            if block.get("type") != "actions":
                continue
            for element in block.get("elements", []):
                if str(element.get("action_id", "")).startswith("remediate:"):
                    found.append((where, element))
    return found


@pytest.mark.parametrize(
    ("scenario", "root_fix"),
    [
        ("outage-db-down", "rds.start_cluster"),
        ("sg-revoked-unhealthy", "ec2.restore_ingress"),  # the undo of the revoke CloudTrail shows
        ("capacity-pinned-slow", "rds.raise_max_capacity"),
    ],
)
def test_diagnose_all_offers_each_fix_once_the_root_causes_in_the_verdict(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack, scenario: str, root_fix: str
) -> None:
    apply_scenario(scenario, stack)
    root = str(runtime.slack.chat_postMessage(channel="C1", text="Diagnosing all…")["ts"])
    jobs.run_diagnosis({"area": "all", "channel": "C1", "thread_ts": root, "user": "U1"})
    buttons = _buttons(fake_slack, root)
    assert buttons, "a thread of several reports carries its fix buttons"
    # the root cause's fix leads, in the verdict
    verdict = [b for where, b in buttons if where == "verdict"]
    assert verdict and verdict[0]["action_id"].startswith(f"remediate:{root_fix}")
    # one plan per fix and target: no two buttons for the same plan or the same fix on the same
    # target, though several findings (and reports) propose it
    assert runtime.plans is not None
    plans = [runtime.plans.resolve(b["value"]) for _, b in buttons]
    assert all(p is not None for p in plans)
    keys = [(p.fix_id, p.target) for p in plans if p is not None]
    assert len(keys) == len(set(keys)), keys
    assert len({b["value"] for _, b in buttons}) == len(buttons)
