"""Performance Issues (guide §6): where the time goes (ALB, ECS, and the db load checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import Link, area
from ...evidence import stopped
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
        Route(namespace="ECS/ContainerInsights", metric="CpuUtilized", runbooks=["perf", "ecs"]),
        Route(namespace="ECS/ContainerInsights", metric="MemoryUtilized", runbooks=["perf", "ecs"]),
        # slow responses meet the load balancer's idle timeout (504): both runbooks
        Route(metric="TargetResponseTime", runbooks=["perf", "alb"]),
        Route(name=r"(ecs|task|container|service).*(cpu|mem)", runbooks=["perf", "ecs"]),
        Route(name=r"response.?time|latency", runbooks=["perf", "alb"]),
    ],
    links={
        "perf.ecs_memory": (
            Link("", "ecs.stopped_tasks", stopped("out_of_memory", "killed")),
            "perf.target_response_time",
        ),
        "perf.ecs_cpu": (
            "perf.target_response_time",
            "alb.health_check_path",
            Link("", "ecs.stopped_tasks", stopped("elb_health", "container_health")),
        ),
    },
    graph=graph,
    module=__name__,
    layer=5,
)
