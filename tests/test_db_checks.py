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


def test_connection_limit_is_estimated_from_max_capacity_without_sql(
    settings: Settings, stack: Stack
) -> None:
    """Not a fixed 90 per ACU: Aurora PostgreSQL's default LEAST(memory/9531392, 5000), memory
    about 2 GiB per ACU at the maximum capacity, said to be an estimate."""
    apply_scenario("db-connections-exhausted", stack)
    finding = _finding(_run(settings, stack), "db.connections")
    assert finding.status is Status.FAIL
    assert finding.evidence["limit"] == 901  # 4 ACU → 8 GiB
    assert "estimated" in finding.evidence["limit_from"]
    [fix] = finding.remediations
    assert fix.id == "rds.raise_max_capacity" and "reboot" in fix.caveat


def test_connection_limit_is_show_max_connections_with_sql(
    settings: Settings, stack: Stack, postgres_dsn: str
) -> None:
    """With a diagnostics connection, the limit is the instance's own max_connections."""
    import psycopg

    with psycopg.connect(postgres_dsn) as conn:
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="diag", SecretString=postgres_dsn
    )
    from sandbox.scenarios._faults import db_metric

    db_metric(
        stack, "DatabaseConnections", [10.0] * 50 + [limit * 0.95] * 10, "Count", instance=False
    )
    s = settings.model_copy(update={"db_diag_secret": "diag"})
    finding = _finding(_run(s, stack), "db.connections")
    assert finding.status is Status.FAIL, finding
    assert (finding.evidence["limit"], finding.evidence["limit_from"]) == (
        limit,
        "SHOW max_connections",
    )


def test_a_writer_pinned_at_max_is_seen_though_the_cluster_average_is_low(
    settings: Settings, stack: Stack
) -> None:
    """The cluster figure averages the writer (4 of 4 ACU) with an idle reader (0.5): 2.25.
    Judged on the cluster, nothing is wrong; judged on the writer, it cannot scale further."""
    apply_scenario("db-capacity-pinned", stack)
    pool = ClientPool(boto3.session.Session(), max_attempts=2)
    ctx = make_context(settings, pool, outputs=stack.outputs)
    cluster_level = ctx.metric(
        "AWS/RDS", "ServerlessDatabaseCapacity", {"DBClusterIdentifier": stack.names.aurora_cluster}
    )
    assert max(p["Maximum"] for p in cluster_level) == 2.25
    finding = _finding(_run(settings, stack), "db.serverless_capacity")
    assert finding.status is Status.FAIL
    assert finding.evidence["judged_on"] == f"writer {stack.extra['db_instances'][0]}"
    assert finding.evidence["latest_acu_utilization_pct"] == 100.0


def test_an_available_cluster_with_a_failed_writer_fails(settings: Settings, stack: Stack) -> None:
    apply_scenario("aurora-writer-failed", stack)
    finding = _finding(_run(settings, stack), "db.cluster_status")
    assert finding.status is Status.FAIL
    writer = stack.extra["db_instances"][0]
    assert finding.title == f"Aurora writer {writer} is failed"
    assert {"instance": writer, "status": "failed", "writer": True} in finding.evidence["instances"]


def test_a_failed_reader_is_a_warning(settings: Settings, stack: Stack) -> None:
    from sandbox.moto_ext import backend

    backend("rds", stack).databases[
        stack.extra["db_instances"][1]
    ].status = "incompatible-parameters"
    finding = _finding(_run(settings, stack), "db.cluster_status")
    assert finding.status is Status.WARN  # the writer still serves
    assert (
        finding.title
        == f"Aurora instance {stack.extra['db_instances'][1]} is incompatible-parameters"
    )


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
    # a check that does not wait on the slow call still reports
    assert _finding(report, "db.slow_queries").status is Status.SKIPPED
