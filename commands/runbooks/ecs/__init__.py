"""ECS Service Issues (guide §1): tasks failing to start, tasks restarting frequently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import Link, area
from ...evidence import from_revision, stopped
from ...graphs import GraphSpec, Panel, Series
from ...routing import Route

if TYPE_CHECKING:
    from ...context import CheckContext
    from ...models import Finding


def graph(ctx: CheckContext) -> GraphSpec:
    """The service's CPU and memory."""
    dims = ctx.ecs_metric_dims()
    return GraphSpec(
        "ecs",
        f"ECS {ctx.names.ecs_service}",
        (
            Panel("CPU (%)", (Series("CPU", "AWS/ECS", "CPUUtilization", dims),), 90.0, "90%"),
            Panel(
                "Memory (%)", (Series("memory", "AWS/ECS", "MemoryUtilization", dims),), 90.0, "90%"
            ),
        ),
    )


# start failures: what keeps a task from starting, and what that shows
_CANNOT_START = stopped(
    "image_missing",
    "image_pull",
    "image_pull_network",
    "image_pull_denied",
    "secrets",
    "secrets_network",
    "secrets_denied",
    "eni",
    "failed_to_start",
)


def _crashed(cause: Finding, effect: Finding) -> bool:
    by_cause = cause.evidence.get("by_cause") or {}
    return any(n for c, n in by_cause.items() if c != "elb_health")


def _start_failure(*categories: str) -> tuple[Link | str, ...]:
    return (
        "ecs.service_events",
        "ecs.service_running",
        Link("", "ecs.stopped_tasks", stopped(*categories)),
    )


AREA = area(
    "ecs",
    title="ECS service",
    services=("ecs", "iam", "logs", "cloudwatch", "ecr", "ec2"),
    routes=[
        # the service's task counts and anything else of ECS or Container Insights
        Route(namespace="AWS/ECS", runbooks=["ecs", "perf"]),
        Route(namespace="ECS/ContainerInsights", runbooks=["ecs", "perf"]),
        Route(
            name=r"running.?tasks?|task.?count|desired.?count|(task|container).*(stop|crash|restart|exit)"
        ),
    ],
    links={
        "ecs.subnet_ips": _start_failure("eni", "failed_to_start"),
        "ecs.execution_role_ecr": _start_failure(
            "image_pull_denied", "secrets_denied", "secrets", "image_pull", "failed_to_start"
        ),
        "ecs.image_repository": _start_failure("image_missing", "image_pull", "failed_to_start"),
        "ecs.memory_utilization": (
            "perf.ecs_memory",
            Link("", "ecs.stopped_tasks", stopped("out_of_memory", "killed")),
        ),
        "ecs.health_check": (Link("", "ecs.stopped_tasks", stopped("container_health")),),
        "ecs.container_errors": (
            Link("", "ecs.stopped_tasks", stopped("app_crash", "container_health", "elb_health")),
            "alb.health_check_path",
            Link("", "alb.http_5xx", lambda c, e: e.evidence.get("source") == "application"),
        ),
        "ecs.stopped_tasks": (
            "ecs.task_churn",
            "ecs.service_running",
            "ecs.service_events",
            "alb.targets_healthy",
            # tasks that crash fail their health checks; tasks killed *for* failing the load
            # balancer's health checks are its consequence, not its cause
            Link("", "alb.health_check_path", _crashed),
            Link(
                "",
                "deploy.ecs_rollout",
                lambda cause, effect: not from_revision(effect, cause),
                "tasks that cannot start fail any rollout; a revision that crashes is the rollout's own",
            ),
        ),
        "ecs.service_events": ("ecs.service_running",),
        "ecs.task_churn": ("alb.targets_healthy",),
        "ecs.service_running": (
            "alb.targets_healthy",
            Link("", "alb.http_5xx", lambda c, e: e.evidence.get("source") == "load balancer"),
        ),
    },
    graph=graph,
    module=__name__,
    layer=3,
)
