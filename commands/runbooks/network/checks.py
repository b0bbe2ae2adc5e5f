"""Networking Issues (guide §4): NAT gateway failures, route tables, VPC flow logs.

Judged as a real account answers: a NAT gateway ``available`` may still be out of source ports
(``ErrorPortAllocation``) or dropping packets; ``describe_nat_gateways`` keeps deleted gateways
for about an hour (history, not failures); a subnet with no explicit route table association
uses the VPC's main route table.
"""

from __future__ import annotations

from typing import Any

from ...context import CheckContext
from ...errors import AwsCallError
from ...models import Finding, Status
from ...registry import check

GONE = ("deleted", "deleting")
DROPS_WARN = 100  # packets dropped in 15 minutes before it is worth a look


def nat_gateways_of(ctx: CheckContext) -> list[dict[str, Any]]:
    ids = ctx.output_list("nat_gateway_ids")
    if ids:
        return list(
            ctx.aws.call("ec2", "describe_nat_gateways", NatGatewayIds=ids).get("NatGateways", [])
        )
    return list(
        ctx.aws.paginate(
            "ec2",
            "describe_nat_gateways",
            "NatGateways",
            Filter=[{"Name": "vpc-id", "Values": [ctx.vpc_id()]}],
        )
    )


def _sum(ctx: CheckContext, metric: str, nat: str) -> float:
    points = ctx.metric("AWS/NATGateway", metric, {"NatGatewayId": nat}, ("Sum",), minutes=15)
    return sum(float(p.get("Sum", 0)) for p in points)


def _default_route(table: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None
    )


def tables_of_subnets(tables: list[dict[str, Any]], subnets: list[str]) -> dict[str, list[str]]:
    """Route table id → the given subnets it routes (the main table for unassociated ones)."""
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    out: dict[str, list[str]] = {}
    for subnet in subnets:
        own = next(
            (
                t
                for t in tables
                if any(a.get("SubnetId") == subnet for a in t.get("Associations", []))
            ),
            main,
        )
        if own is not None:
            out.setdefault(own["RouteTableId"], []).append(subnet)
    return out


@check("network.nat_gateways", title="NAT gateways: state, source ports, drops")
def nat_gateways(ctx: CheckContext) -> Finding:
    gateways = [g for g in nat_gateways_of(ctx) if g.get("State") not in GONE]
    history = [g["NatGatewayId"] for g in nat_gateways_of(ctx) if g.get("State") in GONE]
    available = [g["NatGatewayId"] for g in gateways if g.get("State") == "available"]
    counts = dict(
        zip(
            available,
            ctx.gather(
                *[
                    (
                        lambda n=n: (
                            _sum(ctx, "ErrorPortAllocation", n),
                            _sum(ctx, "PacketsDropCount", n),
                        )
                    )
                    for n in available
                ]
            ),
            strict=True,
        )
    )
    rows = [
        {
            "id": g["NatGatewayId"],
            "state": g.get("State"),
            "subnet": g.get("SubnetId"),
            "failure": g.get("FailureMessage") or g.get("FailureCode"),
            "port_allocation_errors_15min": counts.get(g["NatGatewayId"], (None, None))[0],
            "packets_dropped_15min": counts.get(g["NatGatewayId"], (None, None))[1],
        }
        for g in gateways
    ]
    evidence: dict[str, Any] = {"nat_gateways": rows, "deleted_recently": history}
    if not rows:
        return ctx.finding(
            Status.FAIL,
            "No NAT gateway found",
            "Private subnets cannot reach ECR, Secrets Manager or the internet.",
            evidence,
        )
    failed = [r for r in rows if r["state"] == "failed"]
    if failed:
        bad = failed[0]
        return ctx.finding(
            Status.FAIL,
            f"NAT gateway {bad['id']} is failed",
            f"{bad['failure'] or ''} Re-create it with Terraform (guide: terraform taint "
            "module.vpc.aws_nat_gateway.main[0]; terraform apply).".strip(),
            evidence,
            _reroute(ctx, bad["id"], available),
            resources=[r["id"] for r in failed],
        )
    out_of_ports = [r for r in rows if (r["port_allocation_errors_15min"] or 0) > 0]
    if out_of_ports:
        bad = out_of_ports[0]
        return ctx.finding(
            Status.FAIL,
            f"NAT gateway {bad['id']} is out of source ports",
            f"{bad['port_allocation_errors_15min']:.0f} ErrorPortAllocation in 15 minutes: new "
            "connections to the same destination fail. Spread traffic over more NAT gateways or "
            "elastic IPs, or reuse connections (keep-alive, pooling).",
            evidence,
            resources=[bad["id"]],
        )
    dropping = [r for r in rows if (r["packets_dropped_15min"] or 0) > DROPS_WARN]
    if dropping:
        bad = dropping[0]
        return ctx.finding(
            Status.WARN,
            f"NAT gateway {bad['id']} dropped {bad['packets_dropped_15min']:.0f} packets in 15 min",
            "",
            evidence,
        )
    pending = [r for r in rows if r["state"] != "available"]
    if pending:
        return ctx.finding(
            Status.WARN, f"NAT gateway {pending[0]['id']} is {pending[0]['state']}", "", evidence
        )
    return ctx.finding(Status.OK, f"{len(rows)} NAT gateway(s) available", "", evidence)


def _reroute(ctx: CheckContext, failed: str, available: list[str]) -> list[Any]:
    """Send the private tables that use the failed gateway through a healthy one, until it is
    re-created (a mitigation: cross-zone traffic, one gateway for all)."""
    if not available:
        return []
    tables = [
        t["RouteTableId"]
        for t in ctx.route_tables()
        if (_default_route(t) or {}).get("NatGatewayId") == failed
    ]
    if not tables:
        return []
    return [
        ctx.propose(
            "ec2.reroute_via_nat",
            RouteTableIds=sorted(tables),
            NatGatewayId=available[0],
            FailedNatGatewayId=failed,
        )
    ]


@check("network.private_routes", title="Private routes to a NAT gateway")
def private_routes(ctx: CheckContext) -> Finding:
    tables, gateways = ctx.gather(ctx.route_tables, lambda: nat_gateways_of(ctx))
    nat_state = {g["NatGatewayId"]: g.get("State") for g in gateways}
    private = ctx.private_app_subnet_ids()
    by_table = tables_of_subnets(tables, private)
    known = {t["RouteTableId"]: t for t in tables}
    rows, problems = [], []
    for table_id, subnets in sorted(by_table.items()):
        table = known[table_id]
        default = _default_route(table)
        target = (
            (default or {}).get("NatGatewayId")
            or (default or {}).get("GatewayId")
            or (default or {}).get("TransitGatewayId")
        )
        main = any(a.get("Main") for a in table.get("Associations", []))
        rows.append(
            {
                "route_table": table_id,
                "main": main,
                "subnets": sorted(subnets),
                "default_route": target,
                "route_state": (default or {}).get("State"),
            }
        )
        if default is None:
            problems.append(f"{table_id} has no 0.0.0.0/0 route")
        elif default.get("State") == "blackhole":
            problems.append(f"{table_id}: 0.0.0.0/0 → {target} is a blackhole")
        elif str(target or "").startswith("igw-"):
            problems.append(f"{table_id}: 0.0.0.0/0 → {target}, an internet gateway (not private)")
        elif (
            default.get("NatGatewayId")
            and nat_state.get(default["NatGatewayId"], "available") != "available"
        ):
            problems.append(
                f"{table_id}: 0.0.0.0/0 → {target}, which is {nat_state[default['NatGatewayId']]}"
            )
    evidence = {"private_route_tables": rows, "problems": problems}
    if not private:
        return ctx.finding(
            Status.SKIPPED,
            "Private app subnets unknown",
            "Set the Terraform output private_app_subnet_ids.",
            evidence,
        )
    if not rows:
        return ctx.finding(
            Status.WARN, "No route table found for the private app subnets", "", evidence
        )
    if problems:
        return ctx.finding(
            Status.FAIL,
            f"Private route broken: {problems[0]}",
            "Tasks cannot pull images or reach AWS APIs. Fix the route in Terraform and re-apply.",
            evidence,
            resources=[str(r["route_table"]) for r in rows],
        )
    return ctx.finding(
        Status.OK,
        f"{len(rows)} private route table(s) send 0.0.0.0/0 to an available NAT",
        "",
        evidence,
    )


@check("network.flow_logs", title="VPC flow logs")
def flow_logs(ctx: CheckContext) -> Finding:
    vpc = ctx.vpc_id()
    prefix = ctx.names.flow_logs_log_group_prefix
    logs, groups, role = ctx.gather(  # three independent questions, asked at once
        lambda: ctx.aws.call(
            "ec2", "describe_flow_logs", Filters=[{"Name": "resource-id", "Values": [vpc]}]
        ).get("FlowLogs", []),
        lambda: ctx.aws.call("logs", "describe_log_groups", logGroupNamePrefix=prefix).get(
            "logGroups", []
        ),
        lambda: _role(ctx, ctx.names.flow_logs_role),
    )
    rows = [
        {
            "id": f.get("FlowLogId"),
            "status": f.get("FlowLogStatus"),
            "deliver": f.get("DeliverLogsStatus"),
            "error": f.get("DeliverLogsErrorMessage"),
            "destination": f.get("LogGroupName") or f.get("LogDestination"),
        }
        for f in logs
    ]
    evidence = {
        "vpc_id": vpc,
        "flow_logs": rows,
        "log_groups": [g["logGroupName"] for g in groups],
        "role": ctx.names.flow_logs_role,
        "role_exists": role,
    }
    if not rows:
        return ctx.finding(
            Status.FAIL, f"No flow logs on {vpc}", "Traffic is not being captured.", evidence
        )
    broken = [
        r for r in rows if r["status"] != "ACTIVE" or (r["deliver"] and r["deliver"] != "SUCCESS")
    ]
    if broken:
        return ctx.finding(
            Status.FAIL,
            f"Flow log {broken[0]['id']} is not delivering ({broken[0]['deliver'] or broken[0]['status']})",
            broken[0]["error"] or "Check the IAM role and the log group.",
            evidence,
        )
    cw_destinations = [
        r["destination"]
        for r in rows
        if r["destination"] and not str(r["destination"]).startswith("arn:aws:s3")
    ]
    if cw_destinations and not groups:
        return ctx.finding(
            Status.FAIL,
            f"No log group under {prefix}",
            "The flow logs have nowhere to deliver.",
            evidence,
        )
    if cw_destinations and not role:
        return ctx.finding(
            Status.FAIL,
            f"Flow logs IAM role {ctx.names.flow_logs_role} is missing",
            "Delivery to CloudWatch Logs needs it.",
            evidence,
        )
    return ctx.finding(Status.OK, "VPC flow logs active and delivering", "", evidence)


def _role(ctx: CheckContext, name: str) -> bool:
    try:
        ctx.aws.call("iam", "get_role", RoleName=name)
        return True
    except AwsCallError as exc:
        if exc.code == "NoSuchEntity":
            return False
        raise
