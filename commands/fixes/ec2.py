"""Network fixes: security group rules and private routes (and undoing their changes)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..errors import AwsCallError
from ..models import Risk
from ._registry import Call, FixContext, FixRefused, FixResult, Params, fix

# Ingress changes only on the project's security groups: those tagged Project=<project> (the
# guide's Terraform sets it with default_tags); any other group is refused by IAM itself.
_PROJECT_INGRESS = Call(
    "ec2:AuthorizeSecurityGroupIngress",
    ("arn:aws:ec2:*:*:security-group/*",),
    {"StringEquals": {"aws:ResourceTag/Project": "{project}"}},
    note="only on the project's security groups: tag Project",
)


class AllowEcsToAurora(Params):
    GroupId: str
    SourceSecurityGroupId: str
    Port: int = Field(5432, ge=1, le=65535)


def ingress_rules(ctx: FixContext, group_id: str) -> list[str]:
    """A group's ingress rules, one line each (for before → after)."""
    group = ctx.call("ec2", "describe_security_groups", GroupIds=[group_id])["SecurityGroups"][0]
    rules = []
    for perm in group.get("IpPermissions", []):
        ports = f"{perm.get('FromPort', 'all')}-{perm.get('ToPort', 'all')}"
        rules += [f"{ports} from {pair['GroupId']}" for pair in perm.get("UserIdGroupPairs", [])]
        rules += [f"{ports} from {r['CidrIp']}" for r in perm.get("IpRanges", [])]
        rules += [f"{ports} from {r['PrefixListId']}" for r in perm.get("PrefixListIds", [])]
    return rules


def _authorize(ctx: FixContext, group_id: str, permission: dict[str, Any]) -> None:
    """One ingress permission; already there is not an error (the fix may run after a person)."""
    try:
        ctx.call(
            "ec2", "authorize_security_group_ingress", GroupId=group_id, IpPermissions=[permission]
        )
    except AwsCallError as exc:
        if exc.code != "InvalidPermission.Duplicate":
            raise


def allow_from_group(
    ctx: FixContext, group_id: str, source_group_id: str, port: int, rule: str
) -> FixResult:
    """Ingress on ``port`` from another security group (already there: nothing to do)."""
    before = ingress_rules(ctx, group_id)
    _authorize(
        ctx,
        group_id,
        {
            "IpProtocol": "tcp",
            "FromPort": port,
            "ToPort": port,
            "UserIdGroupPairs": [
                {"GroupId": source_group_id, "Description": f"{rule} (restored by Omni)"}
            ],
        },
    )
    return FixResult(
        f"{group_id} accepts {port} from {source_group_id}",
        {"ingress": before},
        {"ingress": ingress_rules(ctx, group_id)},
    )


@fix(
    "ec2.allow_ecs_to_aurora",
    title="Allow the ECS tasks to reach Aurora",
    risk=Risk.HIGH,
    calls=[_PROJECT_INGRESS],
    reads=("ec2:DescribeSecurityGroups",),
    target="GroupId",
    terraform="Restore `aws_security_group_rule.aurora_from_ecs` (ingress 5432 from the ECS "
    "security group) and apply.",
)
def allow_ecs_to_aurora(ctx: FixContext, p: AllowEcsToAurora) -> FixResult:
    return allow_from_group(ctx, p.GroupId, p.SourceSecurityGroupId, p.Port, "aurora_from_ecs")


class AllowAlbToEcs(Params):
    GroupId: str
    SourceSecurityGroupId: str
    Port: int = Field(ge=1, le=65535)


@fix(
    "ec2.allow_alb_to_ecs",
    title="Let the load balancer reach the tasks",
    risk=Risk.HIGH,
    calls=[_PROJECT_INGRESS],
    reads=("ec2:DescribeSecurityGroups",),
    target="GroupId",
    terraform="Restore the ingress rule from the ALB security group on the container port "
    "(`aws_security_group_rule.ecs_from_alb`) and apply.",
)
def allow_alb_to_ecs(ctx: FixContext, p: AllowAlbToEcs) -> FixResult:
    return allow_from_group(ctx, p.GroupId, p.SourceSecurityGroupId, p.Port, "ecs_from_alb")


class RerouteViaNat(Params):
    RouteTableIds: list[str] = Field(min_length=1, max_length=20)
    NatGatewayId: str
    FailedNatGatewayId: str


def _routes(
    ctx: FixContext, tables: list[str], destination: str = "0.0.0.0/0"
) -> dict[str, dict[str, Any]]:
    """Each table's route to ``destination`` ({}: none)."""
    found = ctx.call("ec2", "describe_route_tables", RouteTableIds=tables)["RouteTables"]
    return {
        table["RouteTableId"]: next(
            (r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == destination),
            {},
        )
        for table in found
    }


def _route_targets(
    ctx: FixContext, tables: list[str], destination: str = "0.0.0.0/0"
) -> dict[str, str | None]:
    """Each table's target for ``destination`` (a NAT or internet gateway; None: no route)."""
    return {
        table: route.get("NatGatewayId") or route.get("GatewayId")
        for table, route in _routes(ctx, tables, destination).items()
    }


def _require_available(ctx: FixContext, nat_id: str, otherwise: str) -> None:
    nat = ctx.call("ec2", "describe_nat_gateways", NatGatewayIds=[nat_id])["NatGateways"]
    if not nat or nat[0].get("State") != "available":
        raise FixRefused(f"{nat_id} is not available: {otherwise}")


@fix(
    "ec2.reroute_via_nat",
    title="Route the private subnets through the healthy NAT gateway",
    risk=Risk.MEDIUM,
    calls=[Call("ec2:ReplaceRoute")],
    reads=("ec2:DescribeRouteTables", "ec2:DescribeNatGateways"),
    target=lambda p: ",".join(p.RouteTableIds),
    terraform="Nothing to keep: re-create the failed NAT gateway (terraform taint "
    "module.vpc.aws_nat_gateway.main[N]; terraform apply), which restores each table's route.",
    caveat="A mitigation: traffic from the other zone crosses zones (and pays for it) until "
    "the failed gateway is re-created.",
)
def reroute_via_nat(ctx: FixContext, p: RerouteViaNat) -> FixResult:
    _require_available(ctx, p.NatGatewayId, "nothing to route through")
    before = _route_targets(ctx, p.RouteTableIds)
    moved = [t for t, target in before.items() if target == p.FailedNatGatewayId]
    if not moved:
        raise FixRefused(f"no table still routes through {p.FailedNatGatewayId}")
    for table in moved:
        ctx.call(
            "ec2",
            "replace_route",
            RouteTableId=table,
            DestinationCidrBlock="0.0.0.0/0",
            NatGatewayId=p.NatGatewayId,
        )
    return FixResult(
        f"{', '.join(moved)} now route through {p.NatGatewayId}",
        {"default_routes": before},
        {"default_routes": _route_targets(ctx, p.RouteTableIds)},
    )


# -- undoing a change (commands.changes): the exact write, reversed ----------------------------
class GroupPair(Params):
    GroupId: str


class CidrRange(Params):
    CidrIp: str


class Cidr6Range(Params):
    CidrIpv6: str


class PrefixList(Params):
    PrefixListId: str


class Permission(Params):
    IpProtocol: str
    FromPort: int | None = Field(None, ge=-1, le=65535)
    ToPort: int | None = Field(None, ge=-1, le=65535)
    UserIdGroupPairs: list[GroupPair] = Field(default_factory=list, max_length=50)
    IpRanges: list[CidrRange] = Field(default_factory=list, max_length=50)
    Ipv6Ranges: list[Cidr6Range] = Field(default_factory=list, max_length=50)
    PrefixListIds: list[PrefixList] = Field(default_factory=list, max_length=50)

    def api(self) -> dict[str, Any]:
        """The permission as ``AuthorizeSecurityGroupIngress`` takes it (empty lists left out)."""
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if v != []}


class RestoreIngress(Params):
    GroupId: str
    IpPermissions: list[Permission] = Field(min_length=1, max_length=20)


@fix(
    "ec2.restore_ingress",
    title="Restore the revoked ingress rules",
    risk=Risk.HIGH,
    calls=[_PROJECT_INGRESS],
    reads=("ec2:DescribeSecurityGroups",),
    target="GroupId",
    terraform="The rule was removed outside Terraform or in a change that must be reverted: keep "
    "it in the security group's Terraform (or revert the commit that removed it), or the next "
    "apply revokes it again.",
    caveat="Re-authorizes exactly the permissions the RevokeSecurityGroupIngress call removed, "
    "as CloudTrail recorded them.",
)
def restore_ingress(ctx: FixContext, p: RestoreIngress) -> FixResult:
    before = ingress_rules(ctx, p.GroupId)
    for permission in p.IpPermissions:  # one by one: a rule already back is not an error
        _authorize(ctx, p.GroupId, permission.api())
    return FixResult(
        f"{p.GroupId}: {len(p.IpPermissions)} revoked permission(s) restored",
        {"ingress": before},
        {"ingress": ingress_rules(ctx, p.GroupId)},
    )


class RestoreRoute(Params):
    RouteTableId: str
    DestinationCidrBlock: str
    NatGatewayId: str


@fix(
    "ec2.restore_route",
    title="Restore the deleted route",
    risk=Risk.MEDIUM,
    calls=[Call("ec2:CreateRoute")],
    reads=("ec2:DescribeRouteTables", "ec2:DescribeNatGateways"),
    target="RouteTableId",
    terraform="The route is Terraform's (aws_route in the vpc module): if it was deleted by a "
    "change in code, revert that change, or the next apply deletes it again.",
    caveat="Recreates the route to the NAT gateway it had before it was deleted, as CloudTrail "
    "recorded it; refused if that gateway is gone or the route exists again.",
)
def restore_route(ctx: FixContext, p: RestoreRoute) -> FixResult:
    _require_available(ctx, p.NatGatewayId, "the route would be a blackhole")
    table, destination = p.RouteTableId, p.DestinationCidrBlock
    if _routes(ctx, [table], destination).get(table):
        raise FixRefused(f"{table} has a route to {destination} again")
    ctx.call(
        "ec2",
        "create_route",
        RouteTableId=table,
        DestinationCidrBlock=destination,
        NatGatewayId=p.NatGatewayId,
    )
    return FixResult(
        f"{table}: {destination} → {p.NatGatewayId} restored",
        {destination: None},
        {destination: _route_targets(ctx, [table], destination).get(table)},
    )
