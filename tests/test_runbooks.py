"""Every runbook against every cause in the guide, and the healthy stack (no false positives)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from commands.analysis import root_cause
from commands.aws import ClientPool
from commands.fargate import next_size, valid
from commands.models import Report, Status
from commands.registry import runbook_names, services_for
from commands.runner import make_context, run_runbooks
from commands.settings import Settings
from sandbox import Stack, apply_scenario, discover

# scenario → the checks it must fail (F) or warn about (W)
EXPECT: dict[str, dict[str, str]] = {
    "aurora-stopped": {"db.cluster_status": "F"},
    "db-sg-missing": {"db.sg_ingress_from_ecs": "F"},
    "db-reader-endpoint": {"db.endpoint_config": "F"},
    "db-capacity-pinned": {"db.serverless_capacity": "F"},
    "db-cpu-high": {"db.cpu": "F"},
    "db-connections-exhausted": {"db.connections": "F"},
    "ecs-oom": {
        "ecs.stopped_tasks": "F",
        "ecs.memory_utilization": "F",
        "ecs.task_churn": "F",
        "perf.ecs_memory": "F",
    },
    "ecs-image-pull": {"ecs.image_repository": "F", "ecs.stopped_tasks": "F"},
    "ecs-execution-role": {"ecs.execution_role_ecr": "F"},
    "ecs-subnet-ips": {"ecs.subnet_ips": "F", "ecs.stopped_tasks": "F"},
    "ecs-health-check": {"ecs.stopped_tasks": "F"},
    "ecs-app-crash": {"ecs.stopped_tasks": "F", "ecs.container_errors": "F"},
    "ecs-tasks-not-running": {"ecs.service_running": "F", "ecs.service_events": "F"},
    "alb-targets-unhealthy": {"alb.targets_healthy": "F", "alb.health_check_path": "F"},
    "alb-sg-missing": {"alb.sg_alb_to_ecs": "F"},
    "alb-idle-timeout": {"alb.idle_timeout": "F"},
    "alb-no-igw": {"alb.internet_gateway": "F"},
    "alb-listener-closed": {"alb.listener_ingress": "F"},
    "nat-failed": {"network.nat_gateways": "F", "network.private_routes": "F"},
    "route-blackhole": {"network.private_routes": "F"},
    "flow-logs-failing": {"network.flow_logs": "F"},
    "waf-rate-limit": {
        "waf.rate_limit": "F",
        "waf.blocked_requests": "F",
        "waf.sampled_blocks": "W",
    },
    "waf-false-positive": {"waf.blocked_requests": "F", "waf.sampled_blocks": "W"},
    "perf-slow-responses": {"perf.target_response_time": "F", "perf.ecs_cpu": "F"},
    "deploy-state-lock": {"deploy.state_lock": "F"},
    "deploy-rollout-failed": {"deploy.ecs_rollout": "F"},
    "alarms-pending-subscription": {"alarms.sns_subscriptions": "F"},
    "alarms-muted": {"alarms.actions_enabled": "F"},
    "alarms-firing": {"alarms.in_alarm": "F"},
    "outage-db-down": {
        "db.cluster_status": "F",
        "ecs.container_errors": "F",
        "alb.targets_healthy": "F",
        "alarms.in_alarm": "F",
    },
}


def _all(settings: Settings, stack: Stack) -> list[Report]:
    pool = ClientPool(boto3.session.Session(), max_attempts=2)
    return run_runbooks(runbook_names(), make_context(settings, pool, outputs=stack.outputs))


def _assert_declared_services(
    settings: Settings, outputs: dict[str, Any], runbooks: list[str]
) -> None:
    """Each runbook, alone, calls only the AWS services its module declared (the list a fresh
    process builds clients from while its first calls are on the wire)."""
    for name in runbooks:
        ctx = make_context(
            settings, ClientPool(boto3.session.Session(), max_attempts=2), outputs=outputs
        )
        run_runbooks([name], ctx)
        used = {call.split(".", 1)[0] for call in ctx.aws.calls}
        assert used, name
        undeclared = used - set(services_for([name]))
        assert not undeclared, (
            f"runbook {name} calls {undeclared}: add them to the services its area declares"
        )


def _findings(reports: list[Report]) -> dict[str, Any]:
    return {f.check: f for r in reports for f in r.findings}


def test_every_scenario_is_covered() -> None:
    assert set(EXPECT) == set(discover()) - {"healthy"}


def test_healthy_stack_has_no_false_positive(settings: Settings, stack: Stack) -> None:
    reports = _all(settings, stack)
    assert {r.runbook for r in reports} == {
        "alarms",
        "alb",
        "db",
        "deploy",
        "ecs",
        "network",
        "perf",
        "waf",
    }
    for f in _findings(reports).values():
        assert f.status not in (Status.FAIL, Status.ERROR), (f.check, f.title, f.detail)
    assert root_cause(reports) is None
    _assert_declared_services(settings, stack.outputs, runbook_names())
    _assert_declared_services(settings, {}, runbook_names())  # resources found without outputs


@pytest.mark.parametrize("scenario", sorted(EXPECT))
def test_scenario_fails_the_right_checks(settings: Settings, stack: Stack, scenario: str) -> None:
    apply_scenario(scenario, stack)
    findings = _findings(_all(settings, stack))
    for check_id, want in EXPECT[scenario].items():
        f = findings[check_id]
        assert f.status is (Status.FAIL if want == "F" else Status.WARN), (
            check_id,
            f.status,
            f.title,
            f.detail,
        )
        assert f.evidence, check_id
    unexpected_errors = [f.check for f in findings.values() if f.status is Status.ERROR]
    assert not unexpected_errors
    area = discover()[scenario].area
    _assert_declared_services(settings, stack.outputs, runbook_names() if area == "all" else [area])


def test_oom_evidence_and_next_fargate_size(settings: Settings, stack: Stack) -> None:
    apply_scenario("ecs-oom", stack)
    f = _findings(_all(settings, stack))["ecs.stopped_tasks"]
    assert f.evidence["by_cause"] == {"out_of_memory": 4}
    assert f.evidence["newest"][0]["exitCode"] == 137
    assert "OutOfMemoryError" in f.evidence["newest"][0]["containerReason"]
    [fix] = f.remediations
    assert fix.id == "ecs.increase_task_memory"
    assert (fix.params["cpu"], fix.params["memory"]) == ("512", "2048")  # the guide: 1024 → 2048


def test_state_lock_evidence_names_who_and_when(settings: Settings, stack: Stack) -> None:
    apply_scenario("deploy-state-lock", stack)
    f = _findings(_all(settings, stack))["deploy.state_lock"]
    [lock] = f.evidence["locks"]
    assert lock["Who"] == "alice@build-runner-7" and lock["Operation"] == "OperationTypeApply"
    assert lock["age_minutes"] >= 119
    [fix] = f.remediations
    assert fix.id == "terraform.release_state_lock" and fix.params["LockID"] == lock["LockID"]
    assert '"ID": "9db590f1-b6fe-c5f2-2678-8804f089deba"' in fix.params["Info"]


def test_waf_rate_limit_proposes_raise_and_allowlist(settings: Settings, stack: Stack) -> None:
    apply_scenario("waf-rate-limit", stack)
    findings = _findings(_all(settings, stack))
    [raise_fix] = findings["waf.rate_limit"].remediations
    assert raise_fix.id == "wafv2.raise_rate_limit" and raise_fix.params["Limit"] == 5000
    sampled = findings["waf.sampled_blocks"]
    assert sampled.evidence["top_ips"][0] == ["203.0.113.10", 60] or sampled.evidence["top_ips"][
        0
    ] == ("203.0.113.10", 60)
    assert sampled.remediations[0].params["Address"] == "203.0.113.10/32"


def test_root_cause_chain_for_a_db_outage(settings: Settings, stack: Stack) -> None:
    apply_scenario("outage-db-down", stack)
    cause = root_cause(_all(settings, stack))
    assert cause is not None
    assert cause.check == "db.cluster_status"
    chain = [link.check for link in cause.chain]
    assert chain[0] == "ecs.container_errors"
    assert (
        chain.index("ecs.stopped_tasks")
        < chain.index("alb.targets_healthy")
        < chain.index("alarms.in_alarm")
    )
    assert cause.summary.startswith("Aurora cluster is stopped → ")


def test_perf_report_says_where_the_time_goes(settings: Settings, stack: Stack) -> None:
    apply_scenario("perf-slow-responses", stack)
    perf = next(r for r in _all(settings, stack) if r.runbook == "perf")
    assert perf.summary is not None and "the time goes to the ECS tasks" in perf.summary


def test_wrong_ecs_names_say_what_was_looked_for(settings: Settings, stack: Stack) -> None:
    other = settings.model_copy(update={"ecs_cluster": "nope-cluster"})
    findings = _findings(_all(other, stack))
    f = findings["ecs.service_running"]
    assert (
        f.status is Status.FAIL and f.title == "ECS service omnirapeutic-production-api not found"
    )
    assert "cluster nope-cluster" in f.detail and "us-east-1" in f.detail
    dependent = findings["ecs.health_check"]
    assert (
        dependent.status is Status.ERROR
        and dependent.evidence["looked_for"] == "omnirapeutic-production-api"
    )
    assert "nope-cluster" in dependent.evidence["where"]


def test_outputs_from_an_s3_state_object(settings: Settings, stack: Stack) -> None:
    import json

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="omni-tfstate")
    state = {
        "version": 4,
        "terraform_version": "1.9.5",
        "outputs": {k: {"value": v, "type": "string"} for k, v in stack.outputs.items()},
    }
    s3.put_object(
        Bucket="omni-tfstate", Key="production/terraform.tfstate", Body=json.dumps(state).encode()
    )
    s = settings.model_copy(
        update={"terraform_outputs": "s3://omni-tfstate/production/terraform.tfstate"}
    )
    ctx = make_context(s, ClientPool(boto3.session.Session(), max_attempts=2))
    assert ctx.outputs["alb_arn"] == stack.outputs["alb_arn"]
    reports = run_runbooks(["alb", "network"], ctx)
    assert not any(r.failed for r in reports)


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (512, 1024, (512, 2048)),
        (256, 2048, (512, 3072)),
        (1024, 8192, (2048, 9216)),
        (16384, 122880, None),
    ],
)
def test_fargate_next_size(cpu: int, memory: int, expected: tuple[int, int] | None) -> None:
    assert next_size(cpu, memory) == expected
    if expected:
        assert valid(*expected)
