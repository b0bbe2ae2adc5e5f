"""Load Balancer Problems (guide §2): 502/503 errors, ALB not receiving traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import Link, area
from ...evidence import stopped
from ...graphs import GraphSpec, Panel, Series
from ...routing import Route

if TYPE_CHECKING:
    from ...context import CheckContext
    from ...models import Finding


def _elb_answered(cause: Finding, effect: Finding) -> bool:
    return effect.evidence.get("source") == "load balancer"


# targets that are unhealthy, unreachable or slow make the load balancer answer 502/503/504
_ELB_5XX = Link("", "alb.http_5xx", _elb_answered)
# and ECS replaces the tasks that fail the load balancer's health checks (exit 137)
_ELB_KILLS = Link("", "ecs.stopped_tasks", stopped("elb_health"))


def graph(ctx: CheckContext) -> GraphSpec:
    """5XX counts (the targets' and the load balancer's own) and response time."""
    dims = {"LoadBalancer": ctx.alb_arn_suffix()}
    name = dims["LoadBalancer"]
    return GraphSpec(
        "alb",
        f"ALB {name.split('/')[1] if '/' in name else name}",
        (
            Panel(
                "Target 5XX (count per minute)",
                (
                    Series(
                        "target 5XX", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims, "Sum"
                    ),
                    Series("ALB 5XX", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", dims, "Sum"),
                ),
            ),
            Panel(
                "Target response time (s)",
                (Series("response time", "AWS/ApplicationELB", "TargetResponseTime", dims),),
            ),
        ),
    )


AREA = area(
    "alb",
    title="Load balancer",
    services=("elbv2", "ecs", "cloudwatch", "ec2"),
    routes=[
        Route(metric="HTTPCode_Target_5XX_Count", runbooks=["alb", "ecs"]),
        Route(metric="HTTPCode_ELB_5XX_Count", runbooks=["alb", "ecs"]),
        Route(metric="UnHealthyHostCount", runbooks=["alb", "ecs"]),
        # any other load balancer metric (rejected connections, target connection errors, 4XX)
        Route(namespace="AWS/ApplicationELB", runbooks=["alb", "ecs"]),
        Route(name=r"(alb|elb|lb|api|target).*5\d\d|5xx", runbooks=["alb", "ecs"]),
        Route(name=r"unhealthy|healthy.?host", runbooks=["alb", "ecs"]),
    ],
    links={
        "alb.internet_gateway": (
            "alb.public_subnets",
            "network.nat_gateways",
            "network.private_routes",
        ),
        "alb.sg_alb_to_ecs": (
            "alb.health_check_path",
            "alb.targets_healthy",
            _ELB_5XX,
            _ELB_KILLS,
        ),
        "alb.health_check_path": ("alb.targets_healthy", _ELB_KILLS),
        "alb.targets_healthy": (_ELB_5XX,),
        "alb.idle_timeout": (_ELB_5XX,),
    },
    graph=graph,
    module=__name__,
    layer=4,
)
