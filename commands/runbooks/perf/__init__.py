"""Performance Issues (guide §6): where the time goes (ALB, ECS, and the db load checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import area
from ...graphs import GraphSpec, Panel, Series
from ...routing import Route

if TYPE_CHECKING:
    from ...context import CheckContext


def graph(ctx: CheckContext) -> GraphSpec:
    """Response time, and the two CPUs it usually waits on."""
    db = {"DBClusterIdentifier": ctx.names.aurora_cluster}
    return GraphSpec(
        "perf",
        "Where the time goes",
        (
            Panel(
                "Target response time (s)",
                (
                    Series(
                        "response time",
                        "AWS/ApplicationELB",
                        "TargetResponseTime",
                        {"LoadBalancer": ctx.alb_arn_suffix()},
                    ),
                ),
            ),
            Panel(
                "CPU (%)",
                (
                    Series("ECS CPU", "AWS/ECS", "CPUUtilization", ctx.ecs_metric_dims()),
                    Series("Aurora CPU", "AWS/RDS", "CPUUtilization", db),
                ),
                90.0,
                "90%",
            ),
        ),
    )


AREA = area(
    "perf",
    title="Performance",
    services=("cloudwatch", "ecs", "elbv2", "rds"),
    routes=[
        Route(namespace="AWS/ECS", metric="CPUUtilization", runbooks=["perf", "ecs"]),
        Route(namespace="AWS/ECS", metric="MemoryUtilization", runbooks=["perf", "ecs"]),
        Route(metric="TargetResponseTime"),
        Route(name=r"(ecs|task|container|service).*(cpu|mem)", runbooks=["perf", "ecs"]),
        Route(name=r"response.?time|latency"),
    ],
    links={
        "perf.ecs_memory": ("ecs.stopped_tasks", "perf.target_response_time"),
        "perf.ecs_cpu": ("perf.target_response_time", "alb.health_check_path"),
        "perf.target_response_time": ("alb.idle_timeout", "alarms.in_alarm"),
    },
    graph=graph,
    module=__name__,
)
