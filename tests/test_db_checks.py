"""Each db check: healthy → ok, broken → fail, AWS error → error naming the failed call."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from commands.aws import ClientPool
from commands.models import Report, Status
from commands.registry import checks_for
from commands.runner import make_context, run_runbook
from commands.settings import Settings
from sandbox import Stack, apply_scenario

from .helpers import fail_call

# check id → (scenario that breaks it, (service id, operation) whose failure makes it error)
CASES = {
    "db.cluster_status": ("aurora-stopped", ("rds", "DescribeDBClusters")),
    "db.sg_ingress_from_ecs": ("db-sg-missing", ("ec2", "DescribeSecurityGroups")),
    "db.endpoint_config": ("db-reader-endpoint", ("secrets-manager", "GetSecretValue")),
    "db.serverless_capacity": ("db-capacity-pinned", ("cloudwatch", "GetMetricStatistics")),
    "db.cpu": ("db-cpu-high", ("cloudwatch", "GetMetricStatistics")),
    "db.connections": ("db-connections-exhausted", ("cloudwatch", "GetMetricStatistics")),
}


def _run(settings: Settings, stack: Stack, session: boto3.session.Session | None = None) -> Report:
    pool = ClientPool(session or boto3.session.Session(), max_attempts=2)
    return run_runbook("db", make_context(settings, pool, outputs=stack.outputs))


def _finding(report: Report, check_id: str) -> Any:
    return next(f for f in report.findings if f.check == check_id)


def test_healthy_stack_has_no_failures(settings: Settings, stack: Stack) -> None:
    report = _run(settings, stack)
    assert {f.check for f in report.findings} == {s.id for s in checks_for("db")}
    for f in report.findings:
        expected = (
            Status.SKIPPED if f.check in {"db.slow_queries", "db.top_statements"} else Status.OK
        )
        assert f.status is expected, (f.check, f.status, f.title, f.detail)
    assert not report.failed


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_broken_state_fails(settings: Settings, stack: Stack, check_id: str) -> None:
    apply_scenario(CASES[check_id][0], stack)
    finding = _finding(_run(settings, stack), check_id)
    assert finding.status is Status.FAIL, (finding.title, finding.detail)
    assert finding.evidence


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_aws_error_becomes_error_finding(settings: Settings, stack: Stack, check_id: str) -> None:
    service, operation = CASES[check_id][1]
    session = boto3.session.Session()
    fail_call(session, service, operation)
    report = _run(settings, stack, session)
    finding = _finding(report, check_id)
    assert finding.status is Status.ERROR
    assert operation in finding.detail and "AccessDenied" in finding.detail
    assert finding.evidence["failed_call"].endswith(operation)
    # the other checks still report
    assert (
        any(f.status is Status.OK for f in report.findings if f.check != check_id)
        or service == "rds"
    )


def test_throttled_call_says_so(settings: Settings, stack: Stack) -> None:
    session = boto3.session.Session()
    fail_call(
        session,
        "secrets-manager",
        "GetSecretValue",
        code="ThrottlingException",
        status=400,
        message="Rate exceeded",
    )
    finding = _finding(_run(settings, stack, session), "db.endpoint_config")
    assert finding.status is Status.ERROR
    assert "throttled" in finding.title


def test_stopped_cluster_proposes_start_with_exact_params(settings: Settings, stack: Stack) -> None:
    apply_scenario("aurora-stopped", stack)
    finding = _finding(_run(settings, stack), "db.cluster_status")
    assert finding.title == "Aurora cluster is stopped"
    assert finding.evidence["Status"] == "stopped"
    [fix] = finding.remediations
    assert (fix.id, fix.risk.value, fix.params) == (
        "rds.start_cluster",
        "low",
        {"DBClusterIdentifier": stack.names.aurora_cluster},
    )


def test_missing_ingress_proposes_the_rule(settings: Settings, stack: Stack) -> None:
    apply_scenario("db-sg-missing", stack)
    [fix] = _finding(_run(settings, stack), "db.sg_ingress_from_ecs").remediations
    assert fix.id == "ec2.allow_ecs_to_aurora" and fix.risk.value == "high"
    assert fix.params == {
        "GroupId": stack.outputs["aurora_security_group_id"],
        "SourceSecurityGroupId": stack.outputs["ecs_security_group_id"],
        "Port": 5432,
    }


def test_security_groups_resolved_without_terraform_outputs(
    settings: Settings, stack: Stack
) -> None:
    """No outputs file: the groups come from the cluster and the ECS service themselves."""
    pool = ClientPool(boto3.session.Session(), max_attempts=2)
    report = run_runbook("db", make_context(settings, pool, outputs={}))
    finding = _finding(report, "db.sg_ingress_from_ecs")
    assert finding.status is Status.OK
    assert finding.evidence["aurora_security_groups"] == [stack.outputs["aurora_security_group_id"]]
    assert finding.evidence["ecs_security_groups"] == [stack.outputs["ecs_security_group_id"]]


def test_reader_endpoint_never_prints_the_secret(settings: Settings, stack: Stack) -> None:
    from sandbox import DB_PASSWORD

    apply_scenario("db-reader-endpoint", stack)
    report = _run(settings, stack)
    finding = _finding(report, "db.endpoint_config")
    assert finding.title == "App DB URL points at the reader endpoint"
    assert finding.evidence["secret_host"] == stack.extra["reader_endpoint"].lower()
    assert DB_PASSWORD not in report.model_dump_json()


def test_capacity_pinned_proposes_raise(settings: Settings, stack: Stack) -> None:
    apply_scenario("db-capacity-pinned", stack)
    finding = _finding(_run(settings, stack), "db.serverless_capacity")
    assert finding.evidence["max_capacity"] == 4.0
    assert finding.remediations[0].id == "rds.raise_max_capacity"
    assert finding.remediations[0].params["MaxCapacity"] == 8.0


def test_connections_against_90_per_acu(settings: Settings, stack: Stack) -> None:
    apply_scenario("db-connections-exhausted", stack)
    finding = _finding(_run(settings, stack), "db.connections")
    assert finding.evidence["approx_limit"] == 360.0
    assert finding.evidence["peak_connections_1h"] == 355.0


def test_wrong_cluster_name_names_what_was_looked_for(settings: Settings, stack: Stack) -> None:
    other = settings.model_copy(update={"aurora_cluster": "no-such-cluster"})
    report = _run(other, stack)
    status = _finding(report, "db.cluster_status")
    assert status.status is Status.FAIL
    assert "no-such-cluster" in status.title and "us-east-1" in status.detail
    capacity = _finding(report, "db.serverless_capacity")
    assert capacity.status is Status.ERROR and capacity.evidence["looked_for"] == "no-such-cluster"


def test_deadline_turns_slow_checks_into_errors(settings: Settings, stack: Stack) -> None:
    import time

    session = boto3.session.Session()
    session.events.register("before-call.rds.DescribeDBClusters", lambda **_: time.sleep(4))
    pool = ClientPool(session, max_attempts=2)
    report = run_runbook("db", make_context(settings, pool, outputs=stack.outputs), deadline_s=2)
    status = _finding(report, "db.cluster_status")
    assert status.status is Status.ERROR and "did not finish" in status.title
    assert _finding(report, "db.cpu").status is Status.OK  # not waiting on the slow call
