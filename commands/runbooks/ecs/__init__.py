"""ECS Service Issues (guide §1): tasks failing to start, tasks restarting frequently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import area
from ...graphs import GraphSpec, Panel, Series

if TYPE_CHECKING:
    from ...context import CheckContext

_START_FAILURE = ("ecs.stopped_tasks", "ecs.service_events", "ecs.service_running")


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


AREA = area(
    "ecs",
    title="ECS service",
    services=("ecs", "iam", "logs", "cloudwatch", "ecr", "ec2"),
    links={
        "ecs.subnet_ips": _START_FAILURE,
        "ecs.execution_role_ecr": _START_FAILURE,
        "ecs.image_repository": _START_FAILURE,
        "ecs.memory_utilization": ("perf.ecs_memory", "ecs.stopped_tasks"),
        "ecs.health_check": ("ecs.stopped_tasks",),
        "ecs.container_errors": ("ecs.stopped_tasks", "alb.health_check_path"),
        "ecs.stopped_tasks": (
            "ecs.task_churn",
            "ecs.service_running",
            "deploy.ecs_rollout",
            "alb.health_check_path",
            "alb.targets_healthy",
        ),
        "ecs.service_events": ("ecs.service_running", "deploy.ecs_rollout"),
        "ecs.task_churn": ("alb.targets_healthy",),
        "ecs.service_running": ("alb.targets_healthy",),
    },
    graph=graph,
    module=__name__,
)
