"""The diagnosis job in-process: real runbooks on moto, posting through the fake Slack over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from bot.slack_client import make_web_client
from commands.aws import ClientPool
from commands.registry import runbook_names
from commands.settings import Settings
from sandbox import Stack, apply_scenario
from sandbox.fakeslack import FakeSlack
from workers import jobs
from workers.runtime import Runtime, set_runtime


@pytest.fixture
def runtime(stack: Stack, fake_slack: FakeSlack, tmp_path: object) -> Iterator[Runtime]:
    import json
    from pathlib import Path

    outputs = Path(str(tmp_path)) / "outputs.json"
    outputs.write_text(json.dumps({k: {"value": v} for k, v in stack.outputs.items()}))
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-job"),
        slack_api_url=fake_slack.url,
        terraform_outputs=str(outputs),
    )
    rt = Runtime(
        settings=settings,
        pool=ClientPool(boto3.session.Session(), max_attempts=2),
        slack=make_web_client(settings),
    )
    set_runtime(rt)
    yield rt
    set_runtime(None)


def test_diagnose_all_posts_root_cause_first(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack
) -> None:
    apply_scenario("outage-db-down", stack)
    root = runtime.slack.chat_postMessage(channel="C1", text="Diagnosing all…")["ts"]
    result = jobs.run_diagnosis({"area": "all", "channel": "C1", "thread_ts": root, "user": "U1"})
    assert len(result["reports"]) == len(runbook_names())  # every area, what changed included
    assert result["root_cause"]["check"] == "db.cluster_status"
    # the verdict comes first: the root is edited into it before any detail is posted
    [update] = fake_slack.find("chat.update", ts=root)
    assert update.text.startswith("Root cause: Aurora cluster is stopped")
    assert "db.cluster_status" in update.all_text()
    replies = [c for c in fake_slack.find("chat.postMessage") if c.thread_ts == root]
    assert replies and all(
        fake_slack.calls.index(update) < fake_slack.calls.index(r) for r in replies
    )
    posted_runbooks = " ".join(c.text for c in replies)
    assert "db:" in posted_runbooks and "alb:" in posted_runbooks
    assert "network:" not in posted_runbooks  # quiet runbooks are not posted


def test_slack_429_is_waited_out(runtime: Runtime, stack: Stack, fake_slack: FakeSlack) -> None:
    apply_scenario("aurora-stopped", stack)
    root = runtime.slack.chat_postMessage(channel="C1", text="Diagnosing db…")["ts"]
    fake_slack.fail_next(2, status=429, retry_after=1)
    jobs.run_diagnosis({"area": "db", "channel": "C1", "thread_ts": root, "user": "U1"})
    updates = fake_slack.find("chat.update", ts=root)
    assert len(updates) == 3  # the verdict: two 429s answered, then the same edit delivered
    assert updates[0].all_text() == updates[2].all_text()
    assert "Aurora cluster is stopped" in updates[2].all_text()
    replies = [c for c in fake_slack.find("chat.postMessage") if c.thread_ts == root]
    # the db details, then one line for what was read beside them (the account's writes)
    assert "Aurora cluster is stopped" in replies[0].all_text()
    assert len(replies) == 2 and "changes" in replies[1].all_text()


def test_the_job_posts_the_root_and_threads_under_it(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack
) -> None:
    report = jobs.run_diagnosis(
        {
            "area": "db",
            "channel": "C1",
            "thread_ts": None,
            "user": "U1",
            "environment": "production",
        }
    )
    posted = fake_slack.find("chat.postMessage", channel="C1")
    assert "Diagnosing *db* in *production*, asked by <@U1>" in posted[0].text
    [root] = fake_slack.roots("C1")  # edited into the verdict since
    assert root["text"].startswith(":") and "db in production" in root["text"]
    assert "asked by <@U1>" in json.dumps(root["blocks"])
    assert report["runbook"] == "db"
    replies = [c for c in posted if c.thread_ts == root["ts"]]
    assert replies and "db.cluster_status" in replies[0].all_text()


def test_not_in_channel_tells_the_user(runtime: Runtime, fake_slack: FakeSlack) -> None:
    original = fake_slack._answer

    def answer(method: str, body: dict[str, Any], token: str | None) -> Any:
        if method == "chat.postMessage":
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        return original(method, body, token)

    fake_slack._answer = answer  # type: ignore[method-assign]
    result = jobs.run_diagnosis(
        {
            "area": "db",
            "channel": "C1",
            "thread_ts": None,
            "user": "U1",
            "response_url": fake_slack.url.replace("/api/", "/response/7"),
        }
    )
    assert result == {"posted": False}
    [reply] = fake_slack.find("response/7")
    assert reply.body["response_type"] == "ephemeral" and "/invite @Omni" in reply.body["text"]


def test_diagnose_alarms_goes_on_to_why_an_alarm_fires(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack
) -> None:
    """A firing alarm names the runbooks its metric routes to; they (and what leads to them)
    run next, so the verdict is the cause, not "an alarm is firing" with a mute button."""
    apply_scenario("outage-db-down", stack)  # the ALB 5XX alarm fires
    root = runtime.slack.chat_postMessage(channel="C1", text="Diagnosing alarms…")["ts"]
    result = jobs.run_diagnosis({"area": "alarms", "channel": "C1", "thread_ts": root})
    assert result["root_cause"]["check"] == "db.cluster_status"
    assert {r["runbook"] for r in result["upstream"]} >= {"alb", "ecs", "db"}
    [update] = fake_slack.find("chat.update", ts=root)
    assert update.text == "Root cause: Aurora cluster is stopped"
    assert "cloudwatch.disable_alarm_actions" not in json.dumps(update.body)


def test_diagnose_alarms_on_a_quiet_stack_runs_only_its_own_checks(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack
) -> None:
    apply_scenario("aurora-stopped", stack)  # broken, but nothing pages for it here
    root = runtime.slack.chat_postMessage(channel="C1", text="Diagnosing alarms…")["ts"]
    result = jobs.run_diagnosis({"area": "alarms", "channel": "C1", "thread_ts": root})
    # what changed is read beside every diagnosis; nothing else runs when nothing alarms
    upstream = [u["runbook"] for u in result["upstream"]]
    assert result["root_cause"] is None and upstream == ["changes"]
    assert {f["check"] for f in result["findings"]} == {
        "alarms.actions_enabled",
        "alarms.in_alarm",
        "alarms.sns_subscriptions",
    }
