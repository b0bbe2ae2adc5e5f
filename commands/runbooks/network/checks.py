"""Networking Issues (guide §4): NAT gateway failures, route tables, VPC flow logs."""

from __future__ import annotations

from typing import Any

from ...context import CheckContext
from ...errors import AwsCallError
from ...models import Finding, Status
from ...registry import check


def _nat_gateways(ctx: CheckContext) -> list[dict[str, Any]]:
    ids = ctx.output_list("nat_gateway_ids")
    if ids:
        return list(
            ctx.aws.call("ec2", "describe_nat_gateways", NatGatewayIds=ids).get("NatGateways", [])
        )
    return list(
        ctx.aws.call(
            "ec2", "describe_nat_gateways", Filters=[{"Name": "vpc-id", "Values": [ctx.vpc_id()]}]
        ).get("NatGateways", [])
    )


@check("network.nat_gateways", title="NAT gateway states")
def nat_gateways(ctx: CheckContext) -> Finding:
    gateways = _nat_gateways(ctx)
    rows = [
        {
            "id": g["NatGatewayId"],
            "state": g.get("State"),
            "subnet": g.get("SubnetId"),
            "failure": g.get("FailureMessage") or g.get("FailureCode"),
        }
        for g in gateways
    ]
    evidence = {"nat_gateways": rows}
    if not rows:
        return ctx.finding(
            Status.FAIL,
            "No NAT gateway found",
            "Private subnets cannot reach ECR, Secrets Manager or the internet.",
            evidence,
        )
    bad = [r for r in rows if r["state"] in ("failed", "deleted", "deleting")]
    if bad:
        return ctx.finding(
            Status.FAIL,
            f"NAT gateway {bad[0]['id']} is {bad[0]['state']}",
            f"{bad[0]['failure'] or ''} Re-create it with Terraform (guide: terraform taint module.vpc.aws_nat_gateway.main[0]; terraform apply).".strip(),
            evidence,
        )
    pending = [r for r in rows if r["state"] != "available"]
    if pending:
        return ctx.finding(
            Status.WARN, f"NAT gateway {pending[0]['id']} is {pending[0]['state']}", "", evidence
        )
    return ctx.finding(Status.OK, f"{len(rows)} NAT gateway(s) available", "", evidence)


@check("network.private_routes", title="Private routes to a NAT gateway")
def private_routes(ctx: CheckContext) -> Finding:
    tables, gateways = ctx.gather(ctx.route_tables, lambda: _nat_gateways(ctx))
    nat_state = {g["NatGatewayId"]: g.get("State") for g in gateways}
    private = set(ctx.private_app_subnet_ids())
    rows, problems = [], []
    for table in tables:
        subnets = {a.get("SubnetId") for a in table.get("Associations", []) if a.get("SubnetId")}
        default = next(
            (r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"),
            None,
        )
        is_public = bool(default and str(default.get("GatewayId", "")).startswith("igw-"))
        if private and not subnets & private:
            continue
        if not private and (is_public or not subnets):
            continue
        target = (
            (default or {}).get("NatGatewayId")
            or (default or {}).get("GatewayId")
            or (default or {}).get("TransitGatewayId")
        )
        row = {
            "route_table": table["RouteTableId"],
            "subnets": sorted(subnets),
            "default_route": target,
            "route_state": (default or {}).get("State"),
        }
        rows.append(row)
        if default is None:
            problems.append(f"{table['RouteTableId']} has no 0.0.0.0/0 route")
        elif default.get("State") == "blackhole":
            problems.append(f"{table['RouteTableId']}: 0.0.0.0/0 → {target} is a blackhole")
        elif (
            default.get("NatGatewayId")
            and nat_state.get(default["NatGatewayId"], "available") != "available"
        ):
            problems.append(
                f"{table['RouteTableId']}: 0.0.0.0/0 → {target}, which is {nat_state[default['NatGatewayId']]}"
            )
    evidence = {"private_route_tables": rows, "problems": problems}
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
