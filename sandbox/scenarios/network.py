"""Networking Issues (guide §4): NAT gateways, routes, flow logs."""

from __future__ import annotations

from ..metrics import replace_metric
from ..moto_ext import backend
from ..stack import Stack
from . import scenario


def fail_nat(stack: Stack, index: int = 0) -> str:
    nat = stack.outputs["nat_gateway_ids"][index]
    ng = backend("ec2", stack).nat_gateways[nat]
    ng.state = "failed"
    ng.failure_code = "Gateway.NotAttached"
    ng.failure_message = "Network vpc is not attached to any internet gateway"
    return str(nat)


@scenario(
    "nat-failed",
    "A NAT gateway failed; the private routes of its zone point at it (guide: NAT Gateway "
    "Deleted or Failed).",
    area="network",
)
def nat_failed(stack: Stack) -> None:
    fail_nat(stack)


@scenario(
    "nat-port-exhaustion",
    "A NAT gateway is 'available' but out of source ports (ErrorPortAllocation).",
    area="network",
    alarm="nat-port-allocation-errors",
)
def nat_ports(stack: Stack) -> None:
    nat = stack.outputs["nat_gateway_ids"][0]
    replace_metric(
        stack,
        "AWS/NATGateway",
        "ErrorPortAllocation",
        {"NatGatewayId": nat},
        [0.0] * 50 + [340.0] * 10,
        "Count",
    )
    replace_metric(
        stack,
        "AWS/NATGateway",
        "PacketsDropCount",
        {"NatGatewayId": nat},
        [0.0] * 50 + [25.0] * 10,
        "Count",
    )


@scenario(
    "route-blackhole",
    "A private route table's default route is a blackhole (guide: Route Table Misconfiguration).",
    area="network",
)
def route_blackhole(stack: Stack) -> None:
    table = backend("ec2", stack).route_tables[stack.extra["private_route_tables"][0]]
    routes = table.routes.values() if isinstance(table.routes, dict) else table.routes
    for route in routes:
        if route.destination_cidr_block == "0.0.0.0/0":
            route._omni_blackhole = True


@scenario(
    "flow-logs-failing",
    "VPC flow logs stopped delivering (guide: VPC Flow Logs Not Capturing Traffic).",
    area="network",
)
def flow_logs(stack: Stack) -> None:
    f = backend("ec2", stack).flow_logs[stack.extra["flow_log_ids"][0]]
    f.deliver_logs_status = "FAILED"
    f.deliver_logs_error_message = "Access error"


@scenario(
    "route-deleted",
    "Someone deleted the default route of a private route table (an SSO admin cleaning up): "
    "that zone's tasks lose the internet and AWS APIs.",
    area="network",
)
def route_deleted(stack: Stack) -> None:
    from .. import cloudtrail

    table = stack.extra["private_route_tables"][0]
    stack.client("ec2").delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    cloudtrail.record(
        stack,
        "DeleteRoute",
        "ec2.amazonaws.com",
        who="AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6789",
        kind="AssumedRole",
        session="bob@example.com",
        resources=[("AWS::EC2::RouteTable", table)],
        request={"routeTableId": table, "destinationCidrBlock": "0.0.0.0/0"},
        response={"_return": True},
        minutes_ago=12,
    )
