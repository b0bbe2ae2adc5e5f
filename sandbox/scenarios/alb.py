"""Load Balancer Problems (guide §2): unhealthy targets, security groups, timeouts."""

from __future__ import annotations

from ..metrics import replace_metric
from ..stack import Stack
from . import scenario
from ._faults import http_5xx, targets


@scenario(
    "alb-targets-unhealthy",
    "Every target fails the health check with 502 (guide: All Targets Unhealthy).",
    area="alb",
    alarm="alb-unhealthy-hosts",
)
def alb_unhealthy(stack: Stack) -> None:
    targets(
        stack,
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [502]",
    )
    http_5xx(stack, elb_503=40)


@scenario(
    "alb-sg-missing",
    "The ECS security group no longer admits the ALB (guide: Security Group Misconfiguration).",
    area="alb",
)
def alb_sg(stack: Stack) -> None:
    stack.client("ec2").revoke_security_group_ingress(
        GroupId=stack.outputs["ecs_security_group_id"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3000,
                "ToPort": 3000,
                "UserIdGroupPairs": [{"GroupId": stack.outputs["alb_security_group_id"]}],
            }
        ],
    )


@scenario(
    "alb-idle-timeout",
    "Responses take almost the 60 s idle timeout; the ALB answers 504 (guide: Connection Timeout).",
    area="alb",
    alarm="alb-response-time-high",
)
def alb_idle(stack: Stack) -> None:
    replace_metric(
        stack,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        {"LoadBalancer": stack.outputs["alb_arn_suffix"]},
        [0.2] * 50 + [58.0] * 10,
        "Seconds",
    )
    http_5xx(stack, elb_504=30)


@scenario(
    "alb-no-igw",
    "The internet gateway was detached from the VPC (guide: No Internet Gateway).",
    area="alb",
)
def alb_igw(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    igw = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [stack.outputs["vpc_id"]]}]
    )["InternetGateways"][0]
    ec2.detach_internet_gateway(
        InternetGatewayId=igw["InternetGatewayId"], VpcId=stack.outputs["vpc_id"]
    )


@scenario(
    "alb-listener-closed",
    "The ALB security group no longer allows port 80 (guide: check security group allows inbound).",
    area="alb",
)
def alb_closed(stack: Stack) -> None:
    stack.client("ec2").revoke_security_group_ingress(
        GroupId=stack.outputs["alb_security_group_id"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 80,
                "ToPort": 80,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
