"""Every fix id executed against moto, before → after asserted; refusals when the state moved."""

from __future__ import annotations

import json

import boto3
import pytest

from commands.aws import ClientPool
from commands.fixes import FixContext, FixRefused, FollowUp, catalogue, run_fix
from commands.runner import make_context, run_runbooks
from commands.settings import Settings
from sandbox import Stack, apply_scenario


def _ctx(dry_run: bool = False) -> FixContext:
    return FixContext(
        ClientPool(boto3.session.Session(), max_attempts=1), "us-east-1", dry_run=dry_run
    )


def _proposed(settings: Settings, stack: Stack, scenario: str, fix_id: str) -> dict:  # type: ignore[type-arg]
    """The parameters the runbooks themselves propose for this scenario."""
    apply_scenario(scenario, stack)
    reports = run_runbooks(
        ["db", "ecs", "alb", "waf", "deploy", "alarms", "perf"],
        make_context(
            settings, ClientPool(boto3.session.Session(), max_attempts=2), outputs=stack.outputs
        ),
    )
    for report in reports:
        for finding in report.findings:
            for r in finding.remediations:
                if r.id == fix_id:
                    return dict(r.params)
    raise AssertionError(f"{scenario} proposed no {fix_id}")


def test_every_fix_module_declares_fixes_with_their_target_and_calls() -> None:
    import importlib
    import pkgutil

    import commands.fixes as package

    fixes = catalogue()
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"commands.fixes.{info.name}").__name__
        assert any(spec.module == module for spec in fixes.values()), f"{module} declares no fix"
    for spec in fixes.values():
        assert spec.calls and spec.terraform and spec.role in ("operator", "admin"), spec.id


def test_start_cluster(settings: Settings, stack: Stack) -> None:
    result = run_fix(
        "rds.start_cluster",
        _proposed(settings, stack, "aurora-stopped", "rds.start_cluster"),
        _ctx(),
    )
    assert result.before == {"Status": "stopped"} and result.after["Status"] in (
        "available",
        "starting",
        "started",
    )
    with pytest.raises(FixRefused):  # not stopped any more: nothing to do
        run_fix("rds.start_cluster", {"DBClusterIdentifier": stack.names.aurora_cluster}, _ctx())


def test_raise_max_capacity(settings: Settings, stack: Stack) -> None:
    result = run_fix(
        "rds.raise_max_capacity",
        _proposed(settings, stack, "db-capacity-pinned", "rds.raise_max_capacity"),
        _ctx(),
    )
    assert result.before == {"MaxCapacity": 4.0} and result.after == {"MaxCapacity": 8.0}


def test_allow_ecs_to_aurora(settings: Settings, stack: Stack) -> None:
    params = _proposed(settings, stack, "db-sg-missing", "ec2.allow_ecs_to_aurora")
    result = run_fix("ec2.allow_ecs_to_aurora", params, _ctx())
    assert result.before == {"ingress": []}
    assert result.after == {"ingress": [f"5432-5432 from {stack.outputs['ecs_security_group_id']}"]}


def test_increase_task_memory(settings: Settings, stack: Stack) -> None:
    params = _proposed(settings, stack, "ecs-oom", "ecs.increase_task_memory")
    result = run_fix("ecs.increase_task_memory", params, _ctx())
    assert result.before["memory"] == "1024" and result.after["memory"] == "2048"
    assert result.after["taskDefinition"].endswith(":2")
    svc = boto3.client("ecs", region_name="us-east-1").describe_services(
        cluster=stack.names.ecs_cluster, services=[stack.names.ecs_service]
    )["services"][0]
    assert svc["taskDefinition"].endswith(":2")
    with pytest.raises(FixRefused):  # planned against :1, the service moved on
        run_fix("ecs.increase_task_memory", params, _ctx())


def test_invalid_fargate_size_is_rejected_before_any_call(stack: Stack) -> None:
    with pytest.raises(ValueError, match="valid Fargate"):
        run_fix(
            "ecs.increase_task_memory",
            {
                "cluster": "c",
                "service": "s",
                "taskDefinition": "t:1",
                "cpu": "256",
                "memory": "8192",
            },
            _ctx(),
        )


def test_force_new_deployment_and_scale(stack: Stack) -> None:
    ref = {"cluster": stack.names.ecs_cluster, "service": stack.names.ecs_service}
    assert run_fix("ecs.force_new_deployment", ref, _ctx()).after["deployments"] >= 1
    result = run_fix("ecs.scale_service", {**ref, "desiredCount": 4}, _ctx())
    assert (result.before, result.after) == ({"desiredCount": 2}, {"desiredCount": 4})


def test_raise_idle_timeout(settings: Settings, stack: Stack) -> None:
    params = _proposed(settings, stack, "alb-idle-timeout", "elbv2.raise_idle_timeout")
    result = run_fix("elbv2.raise_idle_timeout", params, _ctx())
    assert result.before == {"idle_timeout_s": 60} and result.after == {
        "idle_timeout_s": params["IdleTimeoutSeconds"]
    }


def test_alarm_actions_mute_and_enable(stack: Stack) -> None:
    name = f"{stack.names.alarm_prefix}ecs-cpu-high"
    muted = run_fix(
        "cloudwatch.disable_alarm_actions",
        {"AlarmNames": [name], "ReenableAfterMinutes": 30},
        _ctx(),
    )
    assert muted.before == {"ActionsEnabled": {name: True}} and muted.after == {
        "ActionsEnabled": {name: False}
    }
    assert muted.follow_up == FollowUp(
        "cloudwatch.enable_alarm_actions",
        {"AlarmNames": [name]},
        30,
        note="Alarm actions will be re-enabled automatically in 30 minutes.",
    )
    enabled = run_fix("cloudwatch.enable_alarm_actions", {"AlarmNames": [name]}, _ctx())
    assert enabled.after == {"ActionsEnabled": {name: True}}


def test_send_test_notification(stack: Stack) -> None:
    result = run_fix(
        "sns.send_test_notification", {"TopicArn": stack.outputs["alarms_sns_topic_arn"]}, _ctx()
    )
    assert result.after["MessageId"]


def test_waf_allowlist_and_rate_limit(settings: Settings, stack: Stack) -> None:
    params = _proposed(settings, stack, "waf-rate-limit", "wafv2.raise_rate_limit")
    result = run_fix("wafv2.raise_rate_limit", params, _ctx())
    assert (result.before, result.after) == ({"Limit": 2000}, {"Limit": 5000})
    allow = _proposed(settings, stack, "waf-rate-limit", "wafv2.allowlist_ip")
    created = run_fix("wafv2.allowlist_ip", allow, _ctx())
    assert created.after["addresses"] == ["203.0.113.10/32"]
    added = run_fix("wafv2.allowlist_ip", {**allow, "Address": "198.51.100.7/32"}, _ctx())
    assert added.before == {"addresses": ["203.0.113.10/32"]} and added.after == {
        "addresses": ["198.51.100.7/32", "203.0.113.10/32"]
    }


def test_release_state_lock_only_while_it_matches(settings: Settings, stack: Stack) -> None:
    params = _proposed(settings, stack, "deploy-state-lock", "terraform.release_state_lock")
    stale = dict(params)
    table = boto3.client("dynamodb", region_name="us-east-1")
    # someone else took the lock since it was shown: refused, the new lock stays
    newer = json.loads(params["Info"]) | {
        "ID": "11111111-2222-3333-4444-555555555555",
        "Who": "bob@laptop",
    }
    table.put_item(
        TableName=params["TableName"],
        Item={"LockID": {"S": params["LockID"]}, "Info": {"S": json.dumps(newer)}},
    )
    with pytest.raises(FixRefused, match="lock changed"):
        run_fix("terraform.release_state_lock", stale, _ctx())
    assert "Item" in table.get_item(
        TableName=params["TableName"], Key={"LockID": {"S": params["LockID"]}}
    )
    current = {**params, "Info": json.dumps(newer)}
    assert run_fix("terraform.release_state_lock", current, _ctx()).after == {"lock": "released"}
    assert "Item" not in table.get_item(
        TableName=params["TableName"], Key={"LockID": {"S": params["LockID"]}}
    )


def test_dry_run_changes_nothing(settings: Settings, stack: Stack) -> None:
    apply_scenario("aurora-stopped", stack)
    result = run_fix(
        "rds.start_cluster", {"DBClusterIdentifier": stack.names.aurora_cluster}, _ctx(dry_run=True)
    )
    assert "would call rds:StartDBCluster" in result.summary
    rds = boto3.client("rds", region_name="us-east-1")
    assert (
        rds.describe_db_clusters(DBClusterIdentifier=stack.names.aurora_cluster)["DBClusters"][0][
            "Status"
        ]
        == "stopped"
    )


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError):
        run_fix("rds.start_cluster", {"DBClusterIdentifier": "x", "Extra": 1}, _ctx())
