"""Approval rules in-process: real Redis, the fake Slack, signed block_actions through Flask."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from bot.plans import PlanStore, plan_key
from bot.queue import FIXES_QUEUE
from bot.server import create_web_app
from bot.slack_client import make_web_client
from commands.aws import ClientPool
from commands.fixes import propose
from commands.settings import Settings
from sandbox import Stack
from sandbox.fakeslack import FakeSlack
from sandbox.requests import signed_headers
from workers import fixes as fix_jobs

from .helpers import any_plan_of, installed_runtime, plan_in_thread

SECRET = "approvals-signing-secret"
TOKEN = "xoxb-approvals"


@pytest.fixture
def settings(fake_slack: FakeSlack, redis_url: str) -> Settings:
    return Settings(
        slack_bot_token=SecretStr(TOKEN),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        role_bindings={
            "operator": ["U0OP1", "U0OP2", "S0ONCALL"],
            "admin": ["U0ADMIN1", "U0ADMIN2"],
        },
        plan_ttl_s=60,
    )


@pytest.fixture
def web(settings: Settings) -> Iterator[Any]:
    with create_web_app(settings).test_client() as client:
        yield client


@pytest.fixture
def store(redis_url: str, settings: Settings) -> PlanStore:
    return PlanStore(Redis.from_url(redis_url), plan_key(TOKEN), settings.plan_ttl_s)


def _click(web: Any, user: str, fix_id: str, value: str) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T111"},
        "api_app_id": "A0OMNI",
        "token": "x",
        "trigger_id": f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",  # unique per click, as on Slack
        "container": {
            "type": "message",
            "message_ts": "5.5",
            "channel_id": "C1",
            "thread_ts": "1.1",
        },
        "channel": {"id": "C1"},
        "actions": [
            {
                "action_id": f"remediate:{fix_id}:0",
                "value": value,
                "type": "button",
                "block_id": "fix-0",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    assert (
        web.post("/slack/events", data=body, headers=signed_headers(SECRET, body)).status_code
        == 200
    )


def _fix_jobs(redis_url: str) -> list[Any]:
    return Queue(FIXES_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer).jobs


def _said(fake_slack: FakeSlack, user: str, n: int = 1) -> list[str]:
    return [
        c.text
        for c in fake_slack.wait_for(
            lambda: (
                len(fake_slack.find("chat.postEphemeral", user=user)) >= n
                and fake_slack.find("chat.postEphemeral", user=user)
            )
        )
    ]


def test_high_risk_needs_an_admin_and_a_second_person(
    web: Any, store: PlanStore, fake_slack: FakeSlack, redis_url: str
) -> None:
    plan = plan_in_thread(
        store, "ec2.allow_ecs_to_aurora", GroupId="sg-1", SourceSecurityGroupId="sg-2", Port=5432
    )
    _click(web, "U0OP1", plan.fix_id, store.ref(plan))  # an operator cannot start a high-risk fix
    assert "needs the *admin* role" in _said(fake_slack, "U0OP1")[0]
    _click(web, "U0ADMIN1", plan.fix_id, store.ref(plan))
    fake_slack.wait_for(lambda: store.get(plan.id).state == "awaiting_second")  # type: ignore[union-attr]
    _click(web, "U0ADMIN1", plan.fix_id, store.ref(plan))  # the same person twice never counts
    assert "different* person" in _said(fake_slack, "U0ADMIN1")[0]
    assert _fix_jobs(redis_url) == []
    _click(web, "U0OP2", plan.fix_id, store.ref(plan))  # a second, different person
    fake_slack.wait_for(lambda: _fix_jobs(redis_url))
    approved = store.get(plan.id)
    assert (
        approved is not None
        and approved.state == "approved"
        and approved.approvals == ["U0ADMIN1", "U0OP2"]
    )
    [job] = _fix_jobs(redis_url)
    assert job.kwargs == {"job": {"v": 1, "kind": "fix", "plan_id": plan.id, "approver": "U0OP2"}}


def test_expired_plan_is_refused(
    web: Any, store: PlanStore, fake_slack: FakeSlack, redis_url: str
) -> None:
    plan = plan_in_thread(store, "rds.start_cluster", DBClusterIdentifier="c1")
    store.transition(plan.id, {"proposed"}, "proposed", expires_at=time.time() - 1)
    _click(web, "U0OP1", plan.fix_id, store.ref(plan))
    assert "expired" in _said(fake_slack, "U0OP1")[0]
    assert store.get(plan.id).state == "expired"  # type: ignore[union-attr]
    assert _fix_jobs(redis_url) == []


def test_group_member_loses_the_right_when_removed(
    web: Any, store: PlanStore, fake_slack: FakeSlack, redis_url: str
) -> None:
    fake_slack.usergroups["S0ONCALL"] = ["U0MEMBER"]
    plan = plan_in_thread(store, "rds.start_cluster", DBClusterIdentifier="c1")
    Redis.from_url(redis_url).delete("omni:usergroup:S0ONCALL")
    fake_slack.usergroups["S0ONCALL"] = []  # removed before the click
    _click(web, "U0MEMBER", plan.fix_id, store.ref(plan))
    assert "needs the *operator* role" in _said(fake_slack, "U0MEMBER")[0]
    Redis.from_url(redis_url).delete("omni:usergroup:S0ONCALL")  # (the cache lives a minute)
    fake_slack.usergroups["S0ONCALL"] = ["U0MEMBER"]
    _click(web, "U0MEMBER", plan.fix_id, store.ref(plan))
    fake_slack.wait_for(lambda: _fix_jobs(redis_url))


def test_parameters_cannot_be_changed(
    web: Any, store: PlanStore, fake_slack: FakeSlack, redis_url: str
) -> None:
    plan = plan_in_thread(store, "rds.start_cluster", DBClusterIdentifier="c1")
    other = plan_in_thread(store, "rds.start_cluster", DBClusterIdentifier="c2")
    # another plan's signature on this plan's id, or the parameters edited in Redis: both refused
    _click(web, "U0OP1", plan.fix_id, f"{plan.id}.{store.ref(other).split('.')[1]}")
    redis = Redis.from_url(redis_url)
    doc = json.loads(redis.get(f"omni:plan:{plan.id}"))  # type: ignore[arg-type]
    doc["params"]["DBClusterIdentifier"] = "someone-elses-cluster"
    redis.set(f"omni:plan:{plan.id}", json.dumps(doc), keepttl=True)
    _click(web, "U0OP1", plan.fix_id, store.ref(plan))
    said = _said(fake_slack, "U0OP1", 2)
    assert all("does not match any plan" in s for s in said)
    assert _fix_jobs(redis_url) == []


def test_viewer_refused_for_every_fix_id(
    web: Any, store: PlanStore, fake_slack: FakeSlack, redis_url: str
) -> None:
    from commands.fixes import catalogue

    for n, fix_id in enumerate(sorted(catalogue()), start=1):
        plan = store.propose(
            any_plan_of(fix_id, X=1),
            check="c",
            finding="f",
            channel="C1",
            thread_ts="1.1",
            environment="production",
        )
        _click(web, "U0NOBODY", fix_id, store.ref(plan))
        fake_slack.wait_for(
            lambda n=n: len(fake_slack.find("chat.postEphemeral", user="U0NOBODY")) >= n
        )
    assert _fix_jobs(redis_url) == []
    refusals = [
        f for _, f in Redis.from_url(redis_url).xrange("omni:audit") if f[b"event"] == b"refused"
    ]
    assert len(refusals) == len(catalogue())


def test_muted_alarms_are_reenabled_on_schedule(
    settings: Settings, stack: Stack, fake_slack: FakeSlack, redis_url: str, store: PlanStore
) -> None:
    redis = Redis.from_url(redis_url)
    with installed_runtime(settings, redis):
        name = f"{stack.names.alarm_prefix}ecs-cpu-high"
        plan = store.propose(
            propose("cloudwatch.disable_alarm_actions", AlarmNames=[name], ReenableAfterMinutes=30),
            check="alarms.actions_enabled",
            finding="f",
            channel="C1",
            thread_ts="1.1",
            environment="production",
        )
        store.transition(plan.id, {"proposed"}, "approved", approvals=["U0OP1"])
        started = time.time()
        result = fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0OP1"})
        assert result["after"] == {"ActionsEnabled": {name: False}}
        registry = ScheduledJobRegistry(FIXES_QUEUE, connection=redis, serializer=JSONSerializer)
        [job_id] = registry.get_job_ids()
        when = registry.get_scheduled_time(job_id).timestamp()
        assert started + 30 * 60 - 5 <= when <= time.time() + 30 * 60 + 5
        job = Queue(FIXES_QUEUE, connection=redis, serializer=JSONSerializer).fetch_job(job_id)
        assert job is not None and job.func_name == "workers.fixes.run_follow_up"
        assert fix_jobs.run_follow_up(**job.kwargs)["after"] == {"ActionsEnabled": {name: True}}
        assert any("Alarm actions enabled" in c.text for c in fake_slack.find("chat.postMessage"))
        assert (
            fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0OP1"})["ran"] is False
        )  # a duplicate job never runs twice


def test_circuit_breaker_and_dry_run(
    settings: Settings, stack: Stack, fake_slack: FakeSlack, redis_url: str, store: PlanStore
) -> None:
    redis = Redis.from_url(redis_url)
    dry = settings.model_copy(update={"dry_run": True, "fix_limit_per_hour": 2})
    with installed_runtime(dry, redis):
        outcomes = []
        for _ in range(3):
            plan = store.propose(
                propose(
                    "ecs.scale_service",
                    cluster=stack.names.ecs_cluster,
                    service=stack.names.ecs_service,
                    desiredCount=9,
                ),
                check="perf.ecs_cpu",
                finding="f",
                channel="C1",
                thread_ts="1.1",
                environment="production",
            )
            store.transition(plan.id, {"proposed"}, "approved", approvals=["U0OP1"])
            outcomes.append(fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0OP1"}))
        assert [o["ran"] for o in outcomes] == [True, True, False]  # the third hits the breaker
        svc = boto3.client("ecs", region_name="us-east-1").describe_services(
            cluster=stack.names.ecs_cluster, services=[stack.names.ecs_service]
        )["services"][0]
        assert svc["desiredCount"] == 2  # dry run: nothing called
        assert any(
            "dry run: would call ecs:UpdateService" in c.text
            for c in fake_slack.find("chat.postMessage")
        )
        assert any(
            "not run" in c.text and "OMNI_FIX_LIMIT_PER_HOUR" in c.text
            for c in fake_slack.find("chat.postMessage")
        )


def test_fix_role_is_assumed_with_the_slack_user_as_source_identity(
    settings: Settings, stack: Stack, redis_url: str, store: PlanStore
) -> None:
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="omni-fixes",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    session = boto3.session.Session()
    assumed: list[dict[str, Any]] = []
    session.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.append(params)
    )
    with_role = settings.model_copy(update={"fix_role_arn": role})
    with installed_runtime(
        with_role, Redis.from_url(redis_url), ClientPool(session, max_attempts=2)
    ):
        plan = store.propose(
            propose(
                "ecs.scale_service",
                cluster=stack.names.ecs_cluster,
                service=stack.names.ecs_service,
                desiredCount=3,
            ),
            check="perf.ecs_cpu",
            finding="f",
            channel="C1",
            thread_ts="1.1",
            environment="production",
        )
        store.transition(plan.id, {"proposed"}, "approved", approvals=["U0OP1"])
        assert fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0OP1"})["after"] == {
            "desiredCount": 3
        }
    [call] = assumed
    assert call.get("RoleArn") == role, call
    assert call["SourceIdentity"] == "slack-U0OP1" and call["RoleSessionName"] == "slack-U0OP1"


def test_audit_command_and_slash_command(
    web: Any, store: PlanStore, fake_slack: FakeSlack, redis_url: str
) -> None:
    import subprocess
    import sys

    from sandbox.requests import slash_command_body

    from .helpers import REPO, clean_env

    plan = plan_in_thread(store, "rds.start_cluster", DBClusterIdentifier="c1")
    _click(web, "U0NOBODY", plan.fix_id, store.ref(plan))
    fake_slack.wait_for(lambda: fake_slack.find("chat.postEphemeral", user="U0NOBODY"))
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "audit", "--since", "1h", "--format", "json"],
        env=clean_env(REDIS_URL=redis_url),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    [record] = json.loads(out.stdout)
    assert (record["event"], record["user"], record["plan"], record["fix"]) == (
        "refused",
        "U0NOBODY",
        plan.id,
        "rds.start_cluster",
    )
    assert record["params_hash"] == plan.params_hash and "operator" in record["outcome"]
    body = slash_command_body("audit", response_url=fake_slack.url.replace("/api/", "/response/9"))
    listing = web.post("/slack/events", data=body, headers=signed_headers(SECRET, body)).get_json()
    assert listing["response_type"] == "ephemeral"  # the listing is the ack itself
    assert "refused by <@U0NOBODY>: `rds.start_cluster`" in listing["text"]


def test_expired_plan_button_is_replaced_by_a_note(
    web: Any, store: PlanStore, fake_slack: FakeSlack, settings: Settings
) -> None:
    from bot.render import fix_button
    from commands.analysis import Offer

    client = make_web_client(settings)
    root = client.chat_postMessage(channel="C1", text="root")["ts"]
    plan = store.propose(  # proposed in the thread its button is posted in
        propose("rds.start_cluster", DBClusterIdentifier="c1"),
        check="db.cluster_status",
        finding="f",
        channel="C1",
        thread_ts=root,
        environment="production",
    )
    offer = Offer(
        remediation=propose("rds.start_cluster", DBClusterIdentifier="c1"),
        check="db.cluster_status",
        finding="Aurora cluster is stopped",
    )
    button = fix_button(offer, store.ref(plan), 0, "production").to_dict()
    message = client.chat_postMessage(
        channel="C1",
        thread_ts=root,
        text="finding",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "finding"}}, button],
    )["ts"]
    store.transition(plan.id, {"proposed"}, "proposed", expires_at=time.time() - 1)
    payload = {
        "type": "block_actions",
        "user": {"id": "U0OP1"},
        "team": {"id": "T111"},
        "api_app_id": "A0OMNI",
        "token": "x",
        "trigger_id": f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",  # unique per click, as on Slack
        "container": {
            "type": "message",
            "message_ts": message,
            "channel_id": "C1",
            "thread_ts": root,
        },
        "channel": {"id": "C1"},
        "actions": [
            {
                "action_id": button["elements"][0]["action_id"],
                "value": store.ref(plan),
                "type": "button",
                "block_id": "fix-0",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    assert (
        web.post("/slack/events", data=body, headers=signed_headers(SECRET, body)).status_code
        == 200
    )
    [update] = fake_slack.wait_for(lambda: fake_slack.find("chat.update", ts=message))
    kinds = [b["type"] for b in update.body["blocks"]]
    assert kinds == ["section", "context"] and "expired" in json.dumps(update.body["blocks"])


def test_failed_fix_posts_the_reason(
    settings: Settings, stack: Stack, fake_slack: FakeSlack, redis_url: str, store: PlanStore
) -> None:
    with installed_runtime(settings, Redis.from_url(redis_url)):
        plan = store.propose(
            propose("rds.start_cluster", DBClusterIdentifier=stack.names.aurora_cluster),
            check="db.cluster_status",
            finding="f",
            channel="C1",
            thread_ts="1.1",
            environment="production",
        )
        store.transition(plan.id, {"proposed"}, "approved", approvals=["U0OP1"])
        result = fix_jobs.run_fix(
            {"plan_id": plan.id, "approver": "U0OP1"}
        )  # the cluster is available: nothing to start
    assert result["ok"] is False and "not stopped" in result["error"]
    assert store.get(plan.id).state == "failed"  # type: ignore[union-attr]
    [post] = [c for c in fake_slack.find("chat.postMessage") if c.thread_ts == "1.1"]
    assert post.text.startswith(":x: `rds.start_cluster`") and "not stopped" in post.text
