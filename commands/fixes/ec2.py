"""Network fixes: let the ECS tasks reach Aurora again."""

from __future__ import annotations

from pydantic import Field

from ..errors import AwsCallError
from ..models import Risk
from ._registry import Call, FixContext, FixResult, Params, fix


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


@fix(
    "ec2.allow_ecs_to_aurora",
    title="Allow the ECS tasks to reach Aurora",
    risk=Risk.HIGH,
    calls=[Call("ec2:AuthorizeSecurityGroupIngress")],
    reads=("ec2:DescribeSecurityGroups",),
    target="GroupId",
    terraform="Restore `aws_security_group_rule.aurora_from_ecs` (ingress 5432 from the ECS "
    "security group) and apply.",
)
def allow_ecs_to_aurora(ctx: FixContext, p: AllowEcsToAurora) -> FixResult:
    before = ingress_rules(ctx, p.GroupId)
    try:
        ctx.call(
            "ec2",
            "authorize_security_group_ingress",
            GroupId=p.GroupId,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": p.Port,
                    "ToPort": p.Port,
                    "UserIdGroupPairs": [
                        {
                            "GroupId": p.SourceSecurityGroupId,
                            "Description": "aurora_from_ecs (restored by Omni)",
                        }
                    ],
                }
            ],
        )
    except AwsCallError as exc:
        if exc.code != "InvalidPermission.Duplicate":
            raise
    return FixResult(
        f"{p.GroupId} accepts {p.Port} from {p.SourceSecurityGroupId}",
        {"ingress": before},
        {"ingress": ingress_rules(ctx, p.GroupId)},
    )
