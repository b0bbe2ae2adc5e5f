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
) -> None:
    """``count`` tasks of the service, stopped as ECS records it (``stopCode``, reasons)."""
    ecs = stack.client("ecs")
    n = stack.names
    response = ecs.run_task(
        cluster=n.ecs_cluster,
        taskDefinition=stack.extra["task_definition_arn"],
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
