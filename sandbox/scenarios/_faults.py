"""Helpers the scenarios share: stopped tasks, log lines, service state, metric series."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..metrics import replace_metric
from ..moto_ext import SAMPLED_REQUESTS, backend

if TYPE_CHECKING:
    from commands.aws import ClientPool
    from commands.names import Names

    from ..stack import Stack


def service(stack: Stack) -> Any:
    """moto's object of the ECS service (events, deployments, counts)."""
    return backend("ecs", stack).services[stack.extra["service_key"]]


def stop_tasks(
    stack: Stack,
    count: int,
    *,
    stop_code: str,
    reason: str,
    exit_code: int | None,
    container_reason: str = "",
    minutes_ago: float = 3.0,
    every_minutes: float = 7.0,
    task_definition: str | None = None,
) -> None:
    """``count`` tasks of the service, stopped as ECS records it (``stopCode``, reasons)."""
    ecs = stack.client("ecs")
    n = stack.names
    response = ecs.run_task(
        cluster=n.ecs_cluster,
        taskDefinition=task_definition or stack.extra["task_definition_arn"],
        count=count,
        launchType="FARGATE",
        group=f"service:{n.ecs_service}",
        startedBy=f"ecs-svc/{n.ecs_service}",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": stack.outputs["private_app_subnet_ids"],
                "securityGroups": [stack.outputs["ecs_security_group_id"]],
            }
        },
    )
    tasks_by_cluster = backend("ecs", stack).tasks
    for i, task in enumerate(response["tasks"]):
        t = next(
            tasks[task["taskArn"]]
            for tasks in tasks_by_cluster.values()
            if task["taskArn"] in tasks
        )
        t.desired_status = "STOPPED"
        t.last_status = "STOPPED"
        t.stop_code = stop_code
        t.stopped_reason = reason
        t.stopped_at = stack.now - timedelta(minutes=minutes_ago + every_minutes * i)
        t.stopping_at = t.stopped_at
        for c in t.containers:
            c.last_status = "STOPPED"
            if exit_code is not None:
                c.exitCode = exit_code
            c.reason = container_reason


def log_lines(
    pool: ClientPool, region: str, names: Names, now: datetime, lines: list[str], stream: str = ""
) -> None:
    """Lines in the service's log group, spread over the last 29 minutes."""
    logs = pool.client("logs", region)
    name = f"api/api/{stream or f'{random.Random(len(lines)).randrange(16**8):08x}'}"
    logs.create_log_stream(logGroupName=names.log_group, logStreamName=name)
    logs.put_log_events(
        logGroupName=names.log_group,
        logStreamName=name,
        logEvents=[
            {
                # a minute clear of the checks' 30-minute window, which starts at the current
                # minute and so moves when a minute turns
                "timestamp": int(
                    (now - timedelta(seconds=29 * 60 * (len(lines) - i) / len(lines))).timestamp()
                    * 1000
                ),
                "message": m,
            }
            for i, m in enumerate(lines)
        ],
    )


def app_logs(stack: Stack, lines: list[str]) -> None:
    log_lines(stack.pool, stack.region, stack.names, stack.now, lines)


def ecs_metric(stack: Stack, metric: str, values: list[float]) -> None:
    n = stack.names
    replace_metric(
        stack,
        "AWS/ECS",
        metric,
        {"ClusterName": n.ecs_cluster, "ServiceName": n.ecs_service},
        values,
        "Percent",
    )


def alb_metric(stack: Stack, metric: str, values: list[float], unit: str = "Count") -> None:
    replace_metric(
        stack,
        "AWS/ApplicationELB",
        metric,
        {"LoadBalancer": stack.outputs["alb_arn_suffix"]},
        values,
        unit,
    )


def db_metric(
    stack: Stack, metric: str, values: list[float], unit: str = "None", *, instance: bool = True
) -> None:
    """A cluster-level series, and the same on the writer instance (``instance``)."""
    replace_metric(
        stack, "AWS/RDS", metric, {"DBClusterIdentifier": stack.names.aurora_cluster}, values, unit
    )
    if instance:
        writer = stack.extra["db_instances"][0]
        replace_metric(stack, "AWS/RDS", metric, {"DBInstanceIdentifier": writer}, values, unit)


def waf_blocks(stack: Stack, metric: str, values: list[float]) -> None:
    n = stack.names
    replace_metric(
        stack,
        "AWS/WAFV2",
        "BlockedRequests",
        {"WebACL": n.waf_acl, "Region": stack.region, "Rule": metric},
        values,
        "Count",
    )


def waf_samples(
    stack: Stack, metric: str, rule: str, requests: list[tuple[str, str]], method: str = "POST"
) -> None:
    SAMPLED_REQUESTS[(stack.outputs["waf_web_acl_arn"], metric)] = [
        {
            "Request": {
                "ClientIP": ip,
                "Country": "US",
                "URI": uri,
                "Method": method,
                "HTTPVersion": "HTTP/2.0",
                "Headers": [],
            },
            "Weight": 1,
            "Timestamp": (stack.now - timedelta(seconds=20 * i)).timestamp(),
            "Action": "BLOCK",
            "RuleNameWithinRuleGroup": rule,
        }
        for i, (ip, uri) in enumerate(requests)
    ]


def targets(
    stack: Stack, state: str, reason: str, description: str, *, only: int | None = None
) -> None:
    """Every registered target (or the first ``only``) in this health state, as the ALB reports."""
    from moto.elbv2.models import FakeHealthStatus

    tg = backend("elbv2", stack).target_groups[stack.extra["target_group_arn"]]
    original = tg.health_for
    seen: list[str] = []

    def health(target: dict[str, Any], ec2_backend: Any) -> Any:
        if target["Id"] not in seen:
            seen.append(target["Id"])
        if only is not None and seen.index(target["Id"]) >= only:
            return original(target, ec2_backend)
        return FakeHealthStatus(
            target["Id"],
            target.get("Port", tg.port),
            tg.health_check_port,
            state,
            reason,
            description,
        )

    tg.health_for = health


def http_5xx(
    stack: Stack,
    *,
    elb_502: float = 0,
    elb_503: float = 0,
    elb_504: float = 0,
    target: float = 0,
    minutes: int = 10,
) -> None:
    """The last ``minutes`` of 5XX counts per minute, the load balancer's and the targets'."""
    quiet = [0.0] * (60 - minutes)
    elb = elb_502 + elb_503 + elb_504
    for metric, value in (
        ("HTTPCode_ELB_502_Count", elb_502),
        ("HTTPCode_ELB_503_Count", elb_503),
        ("HTTPCode_ELB_504_Count", elb_504),
        ("HTTPCode_ELB_5XX_Count", elb),
        ("HTTPCode_Target_5XX_Count", target),
    ):
        if value:
            alb_metric(stack, metric, quiet + [float(value)] * minutes)


def new_revision(stack: Stack, **container_changes: Any) -> str:
    """Register the service's next task definition revision with ``container_changes``."""
    ecs = stack.client("ecs")
    current = ecs.describe_task_definition(taskDefinition=stack.extra["task_definition_arn"])[
        "taskDefinition"
    ]
    containers = [dict(c, **container_changes) for c in current["containerDefinitions"]]
    keys = ("family", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory")
    registered = ecs.register_task_definition(
        **{k: current[k] for k in keys if current.get(k)}, containerDefinitions=containers
    )["taskDefinition"]
    return str(registered["taskDefinitionArn"])


def revision_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def event(stack: Stack, message: str, minutes_ago: float) -> None:
    """A service event, as ECS words it (newest first)."""
    svc = service(stack)
    svc.events.insert(
        0,
        {
            "id": f"e{len(svc.events) + 1}",
            "createdAt": stack.now - timedelta(minutes=minutes_ago),
            "message": f"(service {stack.names.ecs_service}) {message}",
        },
    )
    svc.events.sort(key=lambda e: e["createdAt"], reverse=True)
