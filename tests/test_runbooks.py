"""Runbook details: evidence, proposals, chains, names, outputs (every scenario: test_scenarios)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from commands.analysis import analyse
from commands.aws import ClientPool
from commands.fargate import next_size, valid
from commands.models import Report, Status
from commands.registry import runbook_names
from commands.runner import make_context, run_runbooks
from commands.settings import Settings
from sandbox import Stack, apply_scenario


def _all(settings: Settings, stack: Stack) -> list[Report]:
    pool = ClientPool(boto3.session.Session(), max_attempts=2)
    return run_runbooks(runbook_names(), make_context(settings, pool, outputs=stack.outputs))


def _findings(reports: list[Report]) -> dict[str, Any]:
    return {f.check: f for r in reports for f in r.findings}


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
    analysis = analyse(_all(settings, stack))
    cause = analysis.root
    assert cause is not None
    assert cause.check == "db.cluster_status"
    chain = [link.check for link in cause.chain]
    assert chain[0] == "ecs.container_errors"
    assert chain.index("ecs.stopped_tasks") < chain.index("alb.targets_healthy")
    assert cause.summary.startswith("Aurora cluster is stopped → ")
    assert {"ecs.container_errors", "alb.http_5xx", "alb.targets_healthy"} <= set(cause.explains)
    # its fix first; the symptoms' fixes are shown without a button
    assert [o.remediation.id for o in analysis.root_fixes] == ["rds.start_cluster"]
    assert all(
        o.symptom_of == "db.cluster_status" for o in analysis.offers if o.check != cause.check
    )


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
