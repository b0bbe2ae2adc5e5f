"""Load balancer fixes: raise the idle timeout."""

from __future__ import annotations

from pydantic import Field

from ..models import Risk
from ._registry import Call, FixContext, FixResult, Params, fix


class IdleTimeout(Params):
    LoadBalancerArn: str
    IdleTimeoutSeconds: int = Field(ge=1, le=4000)


def _idle(ctx: FixContext, arn: str) -> int:
    attrs = ctx.call("elbv2", "describe_load_balancer_attributes", LoadBalancerArn=arn)[
        "Attributes"
    ]
    return int(next((a["Value"] for a in attrs if a["Key"] == "idle_timeout.timeout_seconds"), 60))


@fix(
    "elbv2.raise_idle_timeout",
    title="Raise the ALB idle timeout",
    risk=Risk.LOW,
    calls=[
        Call(
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            ("arn:aws:elasticloadbalancing:*:*:loadbalancer/app/{project}-*",),
        )
    ],
    reads=("elasticloadbalancing:DescribeLoadBalancerAttributes",),
    target="LoadBalancerArn",
    terraform="Set `idle_timeout` on the aws_lb resource in the alb module to the new value.",
)
def raise_idle_timeout(ctx: FixContext, p: IdleTimeout) -> FixResult:
    before = _idle(ctx, p.LoadBalancerArn)
    ctx.call(
        "elbv2",
        "modify_load_balancer_attributes",
        LoadBalancerArn=p.LoadBalancerArn,
        Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": str(p.IdleTimeoutSeconds)}],
    )
    return FixResult(
        "ALB idle timeout raised",
        {"idle_timeout_s": before},
        {"idle_timeout_s": _idle(ctx, p.LoadBalancerArn)},
    )
