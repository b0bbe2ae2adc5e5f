"""Networking Issues (guide §4): NAT gateway failures, route tables, VPC flow logs."""

from __future__ import annotations

from ...areas import Link, area
from ...evidence import stopped
from ...routing import Route

# Private tasks reach ECR, Secrets Manager and the internet through NAT: without it they
# cannot pull images or secrets (i/o timeouts), so they do not start.
_NO_EGRESS = (
    Link(
        "",
        "ecs.stopped_tasks",
        stopped(
            "image_pull_network", "secrets_network", "image_pull", "secrets", "failed_to_start"
        ),
    ),
    "ecs.service_events",
    "ecs.service_running",
)

AREA = area(
    "network",
    title="Network (NAT, routes, flow logs)",
    services=("ec2", "cloudwatch", "logs", "iam", "ecs"),
    routes=[
        Route(namespace="AWS/NATGateway"),
        Route(name=r"\bnat\b|nat-gateway|natgateway"),
    ],
    links={
        "network.nat_gateways": ("network.private_routes", *_NO_EGRESS),
        "network.private_routes": _NO_EGRESS,
    },
    module=__name__,
    layer=0,
)
