"""Networking Issues (guide §4): NAT gateway failures, route tables, VPC flow logs."""

from __future__ import annotations

from ...areas import area
from ...routing import Route

_START_FAILURE = ("ecs.stopped_tasks", "ecs.service_events", "ecs.service_running")

AREA = area(
    "network",
    title="Network (NAT, routes, flow logs)",
    services=("ec2", "logs", "iam", "ecs"),
    routes=[
        Route(namespace="AWS/NATGateway"),
        Route(name=r"\bnat\b|nat-gateway|natgateway"),
    ],
    links={
        "network.nat_gateways": ("network.private_routes", *_START_FAILURE),
        "network.private_routes": _START_FAILURE,
    },
    module=__name__,
)
