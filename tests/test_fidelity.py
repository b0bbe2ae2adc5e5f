"""Real-AWS fidelity (issue 16, items a–h): each check judged on the shapes a real account
returns (the documented ones, not moto's defaults).  The sandbox scenarios and the benign-noise
controls (``test_scenarios*``, ``test_controls``) cover the same ground end to end; these pin
each rule down where it is decided."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from commands.aws import ClientPool
from commands.fixes import FixContext, propose, run_fix
from commands.models import Finding, Status
from commands.registry import all_checks
from commands.runbooks.ecs._start import parse_image
from commands.runbooks.ecs._stops import classify
from commands.runner import make_context, run_check
from commands.settings import Settings
from sandbox import Stack
from sandbox.scenarios import _faults

from .helpers import fail_call
from .scenario_runs import settings_for

DEPLOYMENT = "Scaling activity initiated by (deployment ecs-svc/8812345678901234567)"
OOM = "OutOfMemoryError: Container killed due to memory usage"
SECRETS_DENIED = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
    "retrieval failed: unable to retrieve secret from asm: service call has been retried 1 "
    "time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/exec/abc is "
    "not authorized to perform: secretsmanager:GetSecretValue"
)


def _task(code: str, reason: str, exit_code: int | None, container_reason: str = "") -> Any:
    return {
        "stopCode": code,
        "stoppedReason": reason,
        "containers": [{"exitCode": exit_code, "reason": container_reason}],
    }


def _check(settings: Settings, stack: Stack, check_id: str) -> Finding:
    ctx = make_context(settings_for(settings, stack), stack.pool, outputs=stack.outputs)
    return run_check(all_checks()[check_id], ctx)


# -- a. ECS stops ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "category", "failure"),
    [
        (_task("ServiceSchedulerInitiated", DEPLOYMENT, 143), "deployment", False),
        (_task("ServiceSchedulerInitiated", DEPLOYMENT, 137), "deployment_sigkill", True),
        (
            _task("ServiceSchedulerInitiated", "Scaling activity initiated by (service api)", 143),
            "scale_in",
            False,
        ),
        (
            _task(
                "ServiceSchedulerInitiated",
                "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
                "us-east-1:123456789012:targetgroup/api/0123456789abcdef)",
                137,
            ),
            "elb_health",
            True,
        ),
        (
            _task("EssentialContainerExited", "Essential container in task exited", 137, OOM),
            "out_of_memory",
            True,
        ),
        # exit 137 alone is a SIGKILL, not an out-of-memory kill
        (
            _task("EssentialContainerExited", "Essential container in task exited", 137),
            "killed",
            True,
        ),
        (_task("TaskFailedToStart", SECRETS_DENIED, None), "secrets_denied", True),
        (
            _task(
                "TaskFailedToStart",
                "CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                "failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/api:v9: "
                "dial tcp 52.0.0.1:443: i/o timeout",
                None,
            ),
            "image_pull_network",
            True,
        ),
        (_task("UserInitiated", "Task stopped by user", 143), "user", False),
        (_task("SpotInterruption", "Your Spot Task was interrupted.", 143), "platform", False),
        (
            _task("EssentialContainerExited", "Essential container in task exited", 1),
            "app_crash",
            True,
        ),
    ],
)
def test_stops_are_judged_by_stop_code_and_documented_reasons(
    task: Any, category: str, failure: bool
) -> None:
    stop = classify(task)
    assert (stop.category, stop.failure) == (category, failure), stop


def test_words_not_substrings() -> None:
    """The word "secrets" contains "ecr" and "AccessDenied" contains "eni": words count."""
    stop = classify(_task("TaskFailedToStart", SECRETS_DENIED, None))
    assert stop.category == "secrets_denied"
    assert classify(_task("TaskFailedToStart", "AccessDeniedException", None)).category != "eni"


def test_a_deployment_that_ignored_sigterm_is_a_warning_with_no_memory_fix(
    settings: Settings, stack: Stack
) -> None:
    _faults.stop_tasks(
        stack, 2, stop_code="ServiceSchedulerInitiated", reason=DEPLOYMENT, exit_code=143
    )
    _faults.stop_tasks(
        stack, 1, stop_code="ServiceSchedulerInitiated", reason=DEPLOYMENT, exit_code=137
    )
    finding = _check(settings, stack, "ecs.stopped_tasks")
    assert finding.status is Status.WARN and "ignored SIGTERM" in finding.title
    assert finding.evidence["benign"] == {"deployment": 2}
    assert not finding.remediations


def test_elb_health_kills_are_a_health_problem_not_memory(settings: Settings, stack: Stack) -> None:
    _faults.stop_tasks(
        stack,
        3,
        stop_code="ServiceSchedulerInitiated",
        reason="Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
        "us-east-1:123456789012:targetgroup/api/0123456789abcdef)",
        exit_code=137,
    )
    finding = _check(settings, stack, "ecs.stopped_tasks")
    assert finding.status is Status.FAIL and "health checks" in finding.title
    assert "ecs.increase_task_memory" not in [r.id for r in finding.remediations]


def test_stopped_tasks_are_read_past_the_first_page_of_100(
    settings: Settings, stack: Stack
) -> None:
    _faults.stop_tasks(
        stack,
        105,
        stop_code="ServiceSchedulerInitiated",
        reason=DEPLOYMENT,
        exit_code=143,
        every_minutes=0.1,
    )
    _faults.stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=137,
        container_reason=OOM,
        minutes_ago=1,
    )
    pages = []
    ecs = stack.pool.client("ecs", stack.region)
    ecs.meta.events.register("after-call.ecs.ListTasks", lambda **kw: pages.append(kw))
    finding = _check(settings, stack, "ecs.stopped_tasks")
    assert finding.evidence["stopped_tasks"] == 108  # ECS pages list_tasks at 100
    assert len(pages) == 2
    assert finding.evidence["by_cause"] == {"out_of_memory": 3}


# -- b. service events ------------------------------------------------------------------------
def test_a_failure_ecs_does_not_repeat_stays_a_failure_past_30_minutes(
    settings: Settings, stack: Stack
) -> None:
    _faults.event(
        stack,
        "was unable to place a task because no container instance met all of its requirements.",
        minutes_ago=50,
    )
    finding = _check(settings, stack, "ecs.service_events")
    assert finding.status is Status.FAIL and "first reported" in finding.detail
    # once the service reaches a steady state again, it is history
    _faults.event(stack, "has reached a steady state.", minutes_ago=5)
    assert _check(settings, stack, "ecs.service_events").status is Status.OK


# -- c. Aurora: the capacity fix says a reboot is needed --------------------------------------
def test_the_capacity_fix_says_max_connections_needs_a_reboot() -> None:
    fix = propose(
        "rds.raise_max_capacity", DBClusterIdentifier="c1", MinCapacity=0.5, MaxCapacity=8.0
    )
    assert "reboot" in (fix.caveat or "").lower() and "max_connections" in (fix.caveat or "")


# -- f. Terraform lock: the stale threshold is a setting --------------------------------------
def test_a_lock_is_stale_after_the_configured_minutes(settings: Settings, stack: Stack) -> None:
    from sandbox import apply_scenario

    apply_scenario("long-apply", stack)  # this environment's lock, 40 minutes old
    live = _check(settings, stack, "deploy.state_lock")  # the default is 120 minutes
    assert live.status is Status.WARN and "running now" in live.title and not live.remediations
    strict = settings.model_copy(update={"terraform_lock_stale_min": 30})
    finding = _check(strict, stack, "deploy.state_lock")
    assert finding.status is Status.FAIL
    assert [r.id for r in finding.remediations] == ["terraform.release_state_lock"]


# -- g. WAF sampling ----------------------------------------------------------------------------
def test_waf_samples_report_their_window_and_population(settings: Settings, stack: Stack) -> None:
    from sandbox import apply_scenario

    apply_scenario("waf-false-positive", stack)
    finding = _check(settings, stack, "waf.sampled_blocks")
    assert finding.evidence["window"] and finding.evidence["population"]
    assert all(isinstance(n, int) for n in finding.evidence["population"].values())


# -- h. ECR in the image's registry and region; paging; autoscaling; ELB vs target 5XX ----------
def test_ecr_image_uri_names_its_registry_and_region() -> None:
    ref = parse_image("210987654321.dkr.ecr.eu-central-1.amazonaws.com/team/api@sha256:" + "a" * 64)
    assert ref == {
        "registry": "210987654321",
        "region": "eu-central-1",
        "repository": "team/api",
        "digest": "sha256:" + "a" * 64,
    }
    assert parse_image("public.ecr.aws/nginx/nginx:1.27") is None
    assert parse_image("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/api:v1") == {
        "registry": "123456789012",
        "region": "cn-north-1",
        "repository": "api",
        "tag": "v1",
    }


def test_an_image_in_another_region_is_looked_up_there(settings: Settings, stack: Stack) -> None:
    account = stack.extra["account"]
    ecr = boto3.client("ecr", region_name="eu-west-1")
    ecr.create_repository(repositoryName="platform/api")
    ecr.put_image(
        repositoryName="platform/api",
        imageManifest='{"schemaVersion": 2, "layers": []}',
        imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json",
        imageTag="v7",
    )
    image = f"{account}.dkr.ecr.eu-west-1.amazonaws.com/platform/api:v7"
    arn = _faults.new_revision(stack, image=image)
    stack.client("ecs").update_service(
        cluster=stack.names.ecs_cluster, service=stack.names.ecs_service, taskDefinition=arn
    )
    finding = _check(settings, stack, "ecs.image_repository")
    assert finding.status is Status.OK, finding
    missing = _faults.new_revision(stack, image=image.replace(":v7", ":v8"))
    stack.client("ecs").update_service(
        cluster=stack.names.ecs_cluster, service=stack.names.ecs_service, taskDefinition=missing
    )
    finding = _check(settings, stack, "ecs.image_repository")
    assert finding.status is Status.FAIL and "eu-west-1" in finding.title + str(finding.evidence)


def test_web_acls_are_read_past_the_first_page(settings: Settings, stack: Stack) -> None:
    """Each region's web ACLs come in pages (``NextMarker``): the stack's is found on a later
    one, and its rate rule judged."""
    wafv2 = stack.client("wafv2")
    for i in range(3):
        wafv2.create_web_acl(
            Name=f"aaa-other-{i}",
            Scope="REGIONAL",
            DefaultAction={"Allow": {}},
            Rules=[],
            VisibilityConfig={
                "SampledRequestsEnabled": True,
                "CloudWatchMetricsEnabled": True,
                "MetricName": f"other{i}",
            },
        )
    calls: list[dict[str, Any]] = []
    client = stack.pool.client("wafv2", stack.region)

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 1
        calls.append(dict(params))

    client.meta.events.register("provide-client-params.wafv2.ListWebACLs", small_pages)
    # found by name: no ARN in the Terraform outputs
    outputs = {k: v for k, v in stack.outputs.items() if k != "waf_web_acl_arn"}
    ctx = make_context(settings_for(settings, stack), stack.pool, outputs=outputs)
    try:
        finding = run_check(all_checks()["waf.rate_limit"], ctx)
    finally:
        client.meta.events.unregister("provide-client-params.wafv2.ListWebACLs", small_pages)
    assert len(calls) >= 4 and any("NextMarker" in c for c in calls)
    assert finding.status is not Status.ERROR, finding


def _autoscaled(stack: Stack, low: int, high: int) -> None:
    boto3.client("application-autoscaling", region_name=stack.region).register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{stack.names.ecs_cluster}/{stack.names.ecs_service}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=low,
        MaxCapacity=high,
    )


def test_scaling_an_autoscaled_service_moves_its_minimum(stack: Stack) -> None:
    _autoscaled(stack, 2, 4)
    ref = {"cluster": stack.names.ecs_cluster, "service": stack.names.ecs_service}
    ctx = FixContext(ClientPool(boto3.session.Session(), max_attempts=1), stack.region)
    result = run_fix("ecs.scale_service", {**ref, "desiredCount": 6}, ctx)
    assert result.before == {"desiredCount": 2, "MinCapacity": 2, "MaxCapacity": 4}
    assert result.after == {"desiredCount": 6, "MinCapacity": 6, "MaxCapacity": 6}


def test_load_balancer_5xx_told_apart_from_the_applications(
    settings: Settings, stack: Stack
) -> None:
    _faults.http_5xx(stack, elb_503=40)
    elb = _check(settings, stack, "alb.http_5xx")
    assert elb.status is Status.FAIL and elb.evidence["source"] == "load balancer"
    assert "503" in elb.detail


def test_the_applications_own_5xx_are_not_blamed_on_the_load_balancer(
    settings: Settings, stack: Stack
) -> None:
    _faults.http_5xx(stack, target=40)
    app = _check(settings, stack, "alb.http_5xx")
    assert app.evidence["source"] != "load balancer", app


def test_healthy_stack_reads_no_5xx(settings: Settings, stack: Stack) -> None:
    assert _check(settings, stack, "alb.http_5xx").status is Status.OK


def test_targets_failing_the_same_way_are_one_row_with_their_count(
    settings: Settings, stack: Stack
) -> None:
    """Every target failing its health check alike is one fact: one row and how many targets,
    not one identical row per target."""
    _faults.targets(stack, "unhealthy", "Target.Timeout", "Request timed out")
    found = _check(settings, stack, "alb.health_check_path")
    assert found.status is Status.FAIL
    rows = found.evidence["failing"]
    total = _check(settings, stack, "alb.targets_healthy").evidence["total"]
    assert total >= 2
    assert [(r["description"], r["targets"]) for r in rows] == [("Request timed out", total)]


# -- names a stack chooses -------------------------------------------------------------------
def _log_elsewhere(stack: Stack, group: str) -> None:
    """The service's next revision logs to ``group`` (not the guide's convention), with errors."""
    logs = stack.client("logs")
    logs.create_log_group(logGroupName=group)
    td = stack.client("ecs").describe_task_definition(
        taskDefinition=stack.extra["task_definition_arn"]
    )["taskDefinition"]
    config = dict(td["containerDefinitions"][0]["logConfiguration"])
    config["options"] = {**config["options"], "awslogs-group": group}
    arn = _faults.new_revision(stack, logConfiguration=config)
    stack.client("ecs").update_service(
        cluster=stack.names.ecs_cluster, service=stack.names.ecs_service, taskDefinition=arn
    )
    logs.create_log_stream(logGroupName=group, logStreamName="web/app/1")
    now = int(stack.now.timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="web/app/1",
        logEvents=[
            {"timestamp": now - (30 - i) * 50_000, "message": f"ERROR upstream reset #{i}"}
            for i in range(25)
        ],
    )


def test_errors_are_read_where_the_task_definition_logs(settings: Settings, stack: Stack) -> None:
    """A stack whose containers log to their own group (not /ecs/<project>-<env>/api): the
    errors are read there, from the running task definition's awslogs options."""
    _log_elsewhere(stack, "/platform/shop/web")
    found = _check(settings, stack, "ecs.container_errors")
    assert found.status is Status.FAIL, found
    assert found.evidence["log_group"] == "/platform/shop/web"
    assert found.evidence["error_lines_30min"] == 25


def test_a_configured_log_group_wins(settings: Settings, stack: Stack) -> None:
    _log_elsewhere(stack, "/platform/shop/web")
    configured = settings.model_copy(update={"log_group": stack.names.log_group})
    found = _check(configured, stack, "ecs.container_errors")
    assert found.status is Status.OK and found.evidence["log_group"] == stack.names.log_group


def test_the_aurora_cluster_the_outputs_name_is_the_one_checked(
    aws: Any, settings: Settings
) -> None:
    """A cluster named outside the convention: ``aurora_cluster_endpoint`` (a Terraform output)
    names it, so the db checks look at it rather than report a cluster that was never there."""
    import dataclasses

    from commands.names import Names
    from sandbox import seed

    from .conftest import shared_pool

    names = dataclasses.replace(Names.from_settings(settings), aurora_cluster="shop-main-db")
    stack = seed(shared_pool("seed"), names, settings.region)
    assert stack.outputs["aurora_cluster_endpoint"].startswith("shop-main-db.cluster-")
    found = _check(settings, stack, "db.cluster_status")
    assert found.status is Status.OK, found
    assert "shop-main-db" in str(found.resources or found.evidence)
    stack.client("rds").stop_db_cluster(DBClusterIdentifier="shop-main-db")
    stopped = _check(settings, stack, "db.cluster_status")
    assert stopped.status is Status.FAIL and "stopped" in stopped.title
    assert [r.id for r in stopped.remediations] == ["rds.start_cluster"]
    assert stopped.remediations[0].params["DBClusterIdentifier"] == "shop-main-db"


@pytest.mark.parametrize(
    ("endpoint", "cluster"),
    [
        ("shop-main-db.cluster-c9akciq32.eu-west-1.rds.amazonaws.com", "shop-main-db"),
        ("Shop-Main-DB.cluster-c9akciq32.eu-west-1.rds.amazonaws.com:5432", "shop-main-db"),
        ("shop-main-db.cluster-ro-c9akciq32.eu-west-1.rds.amazonaws.com", None),  # reader
        ("reports.cluster-custom-c9akciq32.eu-west-1.rds.amazonaws.com", None),
        ("db.internal.example.com", None),
        (["not", "a", "string"], None),
    ],
)
def test_cluster_of_endpoint(endpoint: Any, cluster: str | None) -> None:
    from commands.names import Names, cluster_of_endpoint

    assert cluster_of_endpoint(endpoint) == cluster
    settings = Settings(region="us-east-1", aurora_cluster="configured")
    names = Names.from_settings(settings).with_outputs(
        settings, {"aurora_cluster_endpoint": endpoint}
    )
    assert names.aurora_cluster == "configured"  # a setting always wins


def test_json_logs_at_level_error_count_and_their_info_lines_do_not(
    settings: Settings, stack: Stack
) -> None:
    """An app that logs JSON never writes ERROR: its `"level":"error"` lines (pino's 50 too)
    are its errors; its info lines that merely say "error" are not."""
    endpoint = stack.outputs["aurora_cluster_endpoint"]
    noise = [
        '{"level":"info","msg":"GET /api/error-report 200","error_count":0}',
        '{"level":30,"msg":"retrying after a client error"}',
    ] * 10
    _faults.app_logs(stack, noise)
    quiet = _check(settings, stack, "ecs.container_errors")
    assert quiet.status is Status.OK, quiet
    errors = [
        f'{{"level":"error","msg":"connect ECONNREFUSED {endpoint}:5432","pid":{i}}}'
        for i in range(12)
    ] + [f'{{"level":50,"msg":"Pool exhausted: database timeout","pid":{i}}}' for i in range(10)]
    _faults.app_logs(stack, errors)
    found = _check(settings, stack, "ecs.container_errors")
    assert found.status is Status.FAIL, found
    assert found.evidence["error_lines_30min"] == 22
    assert "database" in found.title


def test_a_refused_json_pattern_leaves_the_plain_reading(settings: Settings, stack: Stack) -> None:
    """Should CloudWatch refuse the JSON pattern (moto accepts any), the guide's ERROR reading
    still decides.  The refusal is botocore's own: a before-call hook answers 400."""
    from commands.runbooks.ecs.checks import JSON_ERRORS

    undo = fail_call(
        stack.pool.client("logs", stack.region),
        "cloudwatch-logs",
        "FilterLogEvents",
        code="InvalidParameterException",
        status=400,
        message="Invalid filter pattern",
        when=lambda params: json.loads(params["body"] or b"{}").get("filterPattern") == JSON_ERRORS,
    )
    try:
        _faults.app_logs(stack, [f"ERROR request failed #{i}" for i in range(25)])
        found = _check(settings, stack, "ecs.container_errors")
    finally:
        undo()
    assert found.status is Status.FAIL and found.evidence["error_lines_30min"] == 25
    assert found.evidence["json_levels"] == "not read (InvalidParameterException)"
