"""What changed, and who (issue 17): CloudTrail read as the API allows it, changes tied only to
what they can have broken, the exact undo offered, applied, and verified."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from redis import Redis

from bench.expectations import EXPECTED
from bot.plans import PlanStore, plan_key
from bot.slack_client import make_web_client
from commands.analysis import analyse
from commands.changes import recent
from commands.changes._read import who
from commands.fixes import FixContext, catalogue, run_fix
from commands.models import Status
from commands.registry import all_checks, runbook_names
from commands.runner import make_context, run_check, run_runbooks
from commands.settings import Settings
from sandbox import Stack, apply_scenario, cloudtrail
from sandbox.fakeslack import FakeSlack
from sandbox.metrics import replace_metric
from sandbox.scenarios._faults import waf_blocks
from workers import fixes as fix_jobs
from workers.runtime import Runtime, set_runtime

from .conftest import shared_pool
from .scenario_runs import diagnose_all, settings_for


@pytest.fixture(autouse=True)
def _trail() -> Iterator[None]:
    yield
    cloudtrail.THROTTLE.per_second = 0.0
    cloudtrail.REFUSE.clear()


def _ctx(settings: Settings, stack: Stack) -> Any:
    return make_context(settings_for(settings, stack), shared_pool(), outputs=stack.outputs)


def _writes(stack: Stack, n: int) -> None:
    for i in range(n):
        cloudtrail.record(
            stack,
            "CreateTags",
            "ec2.amazonaws.com",
            who="alice",
            resources=[("AWS::EC2::Instance", f"i-{i:017d}")],
            minutes_ago=1 + i * 0.5,
        )


def test_every_page_is_read_50_at_a_time_with_one_attribute(
    settings: Settings, stack: Stack
) -> None:
    _writes(stack, 120)
    seen = len(cloudtrail.lookups())
    ctx = _ctx(settings, stack)
    reading = recent(ctx)
    assert len([c for c in reading.changes if c.name == "CreateTags"]) >= 120
    calls = cloudtrail.lookups()[seen:]
    assert len(calls) == reading.pages == 3  # 123 writes in the window: 50 + 50 + 23
    assert all(len(c["LookupAttributes"]) == 1 and c["MaxResults"] <= 50 for c in calls)
    assert calls[0]["LookupAttributes"] == [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}]
    assert [c.get("NextToken") for c in calls] == [None, "50", "100"]
    recent(ctx)  # a second caller in the same run shares the reading
    assert len(cloudtrail.lookups()) == seen + 3
    # reads are never changes: the healthy account's DescribeDBClusters is not among them
    assert "DescribeDBClusters" not in {c.name for c in reading.changes}


def test_the_api_takes_one_lookup_attribute(stack: Stack) -> None:
    """The emulation refuses what CloudTrail refuses: Omni must never send two."""
    client = boto3.client("cloudtrail", region_name=stack.region)
    with pytest.raises(ClientError, match="InvalidLookupAttributes"):
        client.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "ReadOnly", "AttributeValue": "false"},
                {"AttributeKey": "EventName", "AttributeValue": "DeleteRoute"},
            ]
        )
    with pytest.raises(ClientError, match="InvalidMaxResults"):
        client.lookup_events(MaxResults=51)


def test_throttling_is_waited_out(settings: Settings, stack: Stack) -> None:
    _writes(stack, 120)
    cloudtrail.THROTTLE.per_second = 1  # stricter than the API's two a second
    started = time.monotonic()
    reading = recent(_ctx(settings, stack))
    assert not reading.errors, reading.errors
    assert len([c for c in reading.changes if c.name == "CreateTags"]) >= 120
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("code", "said"),
    [("AccessDeniedException", "access denied"), ("ThrottlingException", "throttled")],
)
def test_unreadable_cloudtrail_is_an_error_finding_and_the_rest_still_runs(
    settings: Settings, stack: Stack, code: str, said: str
) -> None:
    apply_scenario("aurora-stopped", stack)
    cloudtrail.REFUSE[stack.extra["account"]] = code
    reports = run_runbooks(runbook_names(), _ctx(settings, stack))
    findings = {f.check: f for r in reports for f in r.findings}
    changes = findings["changes.recent"]
    assert changes.status is Status.ERROR and said in changes.title, changes
    assert "cloudtrail:LookupEvents" in changes.detail
    analysis = analyse(reports)  # the diagnosis itself is whole
    assert analysis.root is not None and analysis.root.check == "db.cluster_status"
    assert [o.remediation.id for o in analysis.root_fixes] == ["rds.start_cluster"]
    others = [f for f in findings.values() if f.status is Status.ERROR and f is not changes]
    assert not others, others


@pytest.mark.parametrize(
    ("identity", "named"),
    [
        (
            {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice"},
            "user/alice",
        ),
        (
            {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/deployer/github-actions-41",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "userName": "deployer"},
                },
            },
            "role/deployer (session github-actions-41)",
        ),
        (
            {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/"
                "AWSReservedSSO_Admin_0123456789abcdef/bob@example.com",
            },
            "role/AWSReservedSSO_Admin_0123456789abcdef (session bob@example.com)",
        ),
        ({"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"}, None),
        ({"type": "Root", "arn": "arn:aws:iam::111122223333:root"}, "the account's root user"),
    ],
)
def test_who_is_the_user_or_the_assumed_role_and_its_session(
    identity: dict[str, Any], named: str | None
) -> None:
    if named is None:
        assert who(identity) == "AWS service autoscaling.amazonaws.com"
    else:
        assert who(identity) == named


def test_writes_to_other_resources_and_other_kinds_name_nobody(
    settings: Settings, stack: Stack
) -> None:
    """The writer is pinned at max ACU (no change caused it); the account's writes meanwhile
    touch another cluster, another security group, and tags of this one: none is a lead."""
    apply_scenario("db-capacity-pinned", stack)
    cloudtrail.record(
        stack,
        "ModifyDBCluster",
        "rds.amazonaws.com",
        who="mallory",
        resources=[("AWS::RDS::DBCluster", "analytics-db")],
        request={
            "dBClusterIdentifier": "analytics-db",
            "serverlessV2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 1},
        },
        minutes_ago=5,
    )
    cloudtrail.record(
        stack,
        "RevokeSecurityGroupIngress",
        "ec2.amazonaws.com",
        who="mallory",
        resources=[("AWS::EC2::SecurityGroup", "sg-0ther000000000000")],
        request={"groupId": "sg-0ther000000000000"},
        minutes_ago=6,
    )
    cloudtrail.record(  # this cluster, but a kind that cannot pin its capacity
        stack,
        "AddTagsToResource",
        "rds.amazonaws.com",
        who="mallory",
        resources=[("AWS::RDS::DBCluster", stack.names.aurora_cluster)],
        request={"resourceName": stack.names.aurora_cluster},
        minutes_ago=7,
    )
    outcome = diagnose_all(settings, stack)
    assert outcome.root == "db.serverless_capacity"
    assert outcome.analysis.root is not None and outcome.analysis.root.changes == []
    assert not [c for f in outcome.findings.values() for c in f.changes]
    assert outcome.findings["changes.recent"].evidence["writes"] >= 3  # read, and not blamed


UNDONE = ["sg-revoked-unhealthy", "route-deleted", "db-capacity-lowered", "waf-rule-changed"]


@pytest.mark.parametrize("scenario", [*UNDONE, "bad-deploy"])
def test_the_change_is_named_and_its_undo_repairs_the_stack(
    settings: Settings, stack: Stack, scenario: str
) -> None:
    apply_scenario(scenario, stack)
    expect = EXPECTED[scenario]
    outcome = diagnose_all(settings, stack)
    root = outcome.analysis.root
    assert root is not None and root.check == expect.root
    assert expect.changed_by in {c["who"] for c in root.changes}, root.changes
    assert root.changes[0]["summary"].endswith(f"by {expect.changed_by}")
    [offer, *_] = outcome.analysis.root_fixes
    assert offer.remediation.id == expect.fix
    if scenario in UNDONE:
        assert root.changes[0].get("undo") == expect.fix  # offered as the change's undo
    ctx = FixContext(shared_pool("fixes"), stack.region)
    result = run_fix(offer.remediation.id, dict(offer.remediation.params), ctx)
    assert result.before != result.after
    if scenario == "waf-rule-changed":
        assert result.after == {"Limit": 2000}  # exactly the limit before carol's change
    if catalogue()[offer.remediation.id].settles_min:
        # its check reads a metric that shows the fix minutes later (the worker verifies again
        # then): the minutes pass here
        _settled(scenario, stack)
    after = run_check(all_checks()[expect.root], _ctx(settings, stack))  # type: ignore[index]
    assert after.status is Status.OK, (after.title, after.detail)


def _settled(scenario: str, stack: Stack) -> None:
    """The metrics a few minutes after the undo: no more blocks; the writer at 1 of 4 ACU."""
    if scenario == "waf-rule-changed":
        waf_blocks(stack, stack.extra["waf_metrics"]["rate"], [0.0] * 12)
    elif scenario == "db-capacity-lowered":
        writer = stack.extra["db_instances"][0]
        replace_metric(
            stack, "AWS/RDS", "ACUUtilization", {"DBInstanceIdentifier": writer}, [25.0] * 60
        )


def test_the_undo_of_a_lowered_capacity_restores_the_range_before_it(
    settings: Settings, stack: Stack
) -> None:
    apply_scenario("db-capacity-lowered", stack)
    outcome = diagnose_all(settings, stack)
    [offer, *_] = outcome.analysis.root_fixes
    assert offer.remediation.params == {
        "DBClusterIdentifier": stack.names.aurora_cluster,
        "MinCapacity": 0.5,
        "MaxCapacity": 4.0,  # what CreateDBCluster set, five days before dave's change
    }


def test_a_revoke_undo_carries_exactly_the_revoked_permissions(
    settings: Settings, stack: Stack
) -> None:
    apply_scenario("sg-revoked-unhealthy", stack)
    [offer, *_] = diagnose_all(settings, stack).analysis.root_fixes
    params = offer.remediation.params
    assert params["GroupId"] == stack.outputs["ecs_security_group_id"]
    [perm] = params["IpPermissions"]
    assert (perm["IpProtocol"], perm["FromPort"], perm["ToPort"]) == ("tcp", 3000, 3000)
    assert perm["UserIdGroupPairs"] == [{"GroupId": stack.outputs["alb_security_group_id"]}]
    assert "rds" not in offer.remediation.call and "AuthorizeSecurityGroupIngress" in (
        offer.remediation.call
    )


def test_a_waf_undo_is_verified_again_once_its_metric_settles(
    settings: Settings, stack: Stack, fake_slack: FakeSlack, redis_url: str
) -> None:
    """The approved undo runs; its check still sees the blocks of the minutes before, so the
    worker says so and checks again 5 minutes later (RQ's scheduler), which then says ok."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry
    from rq.serializers import JSONSerializer

    from bot.queue import FIXES_QUEUE
    from commands.fixes import propose

    apply_scenario("waf-rule-changed", stack)
    [offer, *_] = diagnose_all(settings, stack).analysis.root_fixes
    env = settings_for(settings, stack).model_copy(
        update={"slack_api_url": fake_slack.url, "terraform_outputs": stack.extra["state_url"]}
    )
    redis = Redis.from_url(redis_url)
    rt = Runtime.with_redis(env, shared_pool(), make_web_client(env), redis)
    set_runtime(rt)
    try:
        store = PlanStore(redis, plan_key("xoxb-undo"), 600)
        rt.plans = store
        plan = store.propose(
            propose(offer.remediation.id, **offer.remediation.params),
            check=offer.check,
            finding=offer.finding,
            channel="C1",
            thread_ts="1.1",
            environment="production",
        )
        store.transition(plan.id, {"proposed"}, "approved", approvals=["U0ADMIN", "U0SECOND"])
        result = fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0SECOND"})
        assert result["after"] == {"Limit": 2000}
        assert "Omni checks again in 5 min" in result["verification"] or any(
            "checks again in 5 min" in c.text for c in fake_slack.find("chat.postMessage")
        )
        registry = ScheduledJobRegistry(FIXES_QUEUE, connection=redis, serializer=JSONSerializer)
        [job_id] = registry.get_job_ids()
        job = Queue(FIXES_QUEUE, connection=redis, serializer=JSONSerializer).fetch_job(job_id)
        assert job is not None and job.func_name == "workers.fixes.run_verify"
        waf_blocks(stack, stack.extra["waf_metrics"]["rate"], [0.0] * 12)  # 5 minutes later
        assert fix_jobs.run_verify(**job.kwargs)["verified"] is True
        assert any(
            "Verification 5 min after `wafv2.raise_rate_limit`" in c.text and "*ok*" in c.text
            for c in fake_slack.find("chat.postMessage")
        )
    finally:
        set_runtime(None)
