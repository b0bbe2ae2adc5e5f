"""Benign noise: what a healthy production stack does every day, which must raise nothing.

Each control disturbs the stack the way a real account does when nothing is wrong; a check that
calls any of these a failure would page someone for nothing.
"""

from __future__ import annotations

import json
from typing import Any

from .. import cloudtrail
from ..metrics import replace_metric
from ..moto_ext import POPULATION, backend
from ..stack import Stack
from . import scenario
from ._faults import app_logs, event, service, stop_tasks, waf_blocks, waf_samples
from .deploy import lock_info, our_state, put_lock


@scenario("healthy", "Everything is fine (no fault).", area="all", kind="control")
def healthy(stack: Stack) -> None:
    return None


@scenario(
    "rolling-deployment",
    "A rolling deployment replaced the tasks 20 minutes ago: the old ones stopped with SIGTERM "
    "(exit 143), one ignored it and was killed after stopTimeout (exit 137).",
    area="ecs",
    kind="control",
)
def rolling_deployment(stack: Stack) -> None:
    deployment = service(stack).deployments[0]
    reason = f"Scaling activity initiated by (deployment {deployment['id']})"
    stop_tasks(
        stack,
        2,
        stop_code="ServiceSchedulerInitiated",
        reason=reason,
        exit_code=143,
        minutes_ago=20,
    )
    stop_tasks(
        stack,
        1,
        stop_code="ServiceSchedulerInitiated",
        reason=reason,
        exit_code=137,
        minutes_ago=19,
    )
    event(stack, "has started 2 tasks: (task 71ac) (task 02bd).", 22)
    event(stack, "has stopped 2 running tasks: (task a1b2) (task c3d4).", 20)
    event(stack, f"(deployment {deployment['id']}) deployment completed.", 18)
    event(stack, "has reached a steady state.", 17)


@scenario(
    "autoscaling-scale-in",
    "Application Auto Scaling scaled the service in after the morning peak (exit 143).",
    area="ecs",
    kind="control",
)
def scale_in(stack: Stack) -> None:
    stop_tasks(
        stack,
        2,
        stop_code="ServiceSchedulerInitiated",
        reason=f"Scaling activity initiated by (service {stack.names.ecs_service})",
        exit_code=143,
        minutes_ago=35,
    )


@scenario(
    "old-service-event",
    "A placement failure three hours ago, then a steady state: history, not a current failure.",
    area="ecs",
    kind="control",
)
def old_event(stack: Stack) -> None:
    event(
        stack,
        "was unable to place a task because no container instance met all of its requirements.",
        180,
    )
    event(stack, "has reached a steady state.", 150)


@scenario(
    "few-app-errors",
    "A handful of ERROR lines from bad client requests: worth a look, not a failure.",
    area="ecs",
    kind="control",
)
def few_errors(stack: Stack) -> None:
    app_logs(
        stack,
        [
            f"ERROR validation failed for POST /api/v1/patients: missing field 'dob' #{i}"
            for i in range(4)
        ],
    )


@scenario(
    "scanner-noise",
    "Internet scanners probe /wp-login.php and /.env from dozens of addresses; the managed "
    "rules block them, with a burst in the last minutes.",
    area="waf",
    kind="control",
)
def scanner_noise(stack: Stack) -> None:
    metric = stack.extra["waf_metrics"]["common"]
    waf_blocks(stack, metric, [30.0] * 11 + [240.0])
    paths = ["/wp-login.php", "/.env", "/phpmyadmin/index.php", "/.git/config", "/cgi-bin/luci"]
    waf_samples(
        stack,
        metric,
        "GenericLFI_URIPATH",
        [(f"45.155.{i % 50}.{i % 200}", paths[i % len(paths)]) for i in range(120)],
        method="GET",
    )
    POPULATION[(stack.outputs["waf_web_acl_arn"], metric)] = 600


@scenario(
    "waf-sampling-off",
    "A rule keeps no sampled requests (SampledRequestsEnabled false) and blocks a few a minute.",
    area="waf",
    kind="control",
)
def sampling_off(stack: Stack) -> None:
    waf = stack.client("wafv2")
    name = stack.names.waf_acl
    acl_id = stack.outputs["waf_web_acl_arn"].rsplit("/", 1)[1]
    current = waf.get_web_acl(Name=name, Scope="REGIONAL", Id=acl_id)
    rules = current["WebACL"]["Rules"]
    for rule in rules:
        rule["VisibilityConfig"]["SampledRequestsEnabled"] = False
    waf.update_web_acl(
        Name=name,
        Scope="REGIONAL",
        Id=acl_id,
        DefaultAction=current["WebACL"]["DefaultAction"],
        Rules=rules,
        VisibilityConfig=current["WebACL"]["VisibilityConfig"],
        LockToken=current["LockToken"],
    )
    waf_blocks(stack, stack.extra["waf_metrics"]["common"], [3.0] * 12)


@scenario(
    "sg-by-cidr",
    "Aurora admits the ECS tasks by their subnets' CIDR (10.0.10.0/23), not by their group.",
    area="db",
    kind="control",
)
def sg_by_cidr(stack: Stack) -> None:
    aurora, ecs_sg = (
        stack.outputs["aurora_security_group_id"],
        stack.outputs["ecs_security_group_id"],
    )
    _admit_otherwise(stack, aurora, 5432, ecs_sg, {"IpRanges": [{"CidrIp": "10.0.10.0/23"}]})


def _admit_otherwise(
    stack: Stack, group: str, port: int, source_group: str, source: dict[str, Any]
) -> None:
    """``group`` admits on ``port`` by ``source`` (a CIDR, a prefix list) instead of by
    ``source_group``: the same traffic, admitted another way."""
    ec2 = stack.client("ec2")
    rule = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    ec2.revoke_security_group_ingress(
        GroupId=group, IpPermissions=[{**rule, "UserIdGroupPairs": [{"GroupId": source_group}]}]
    )
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{**rule, **source}])


@scenario(
    "sg-by-prefix-list",
    "The ECS group admits the ALB through a managed prefix list of the public subnets.",
    area="alb",
    kind="control",
)
def sg_by_prefix_list(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    ecs_sg, alb_sg = stack.outputs["ecs_security_group_id"], stack.outputs["alb_security_group_id"]
    pl = ec2.create_managed_prefix_list(
        PrefixListName=f"{stack.names.project}-public",
        AddressFamily="IPv4",
        MaxEntries=5,
        Entries=[{"Cidr": "10.0.0.0/24"}, {"Cidr": "10.0.1.0/24"}],
    )["PrefixList"]["PrefixListId"]
    _admit_otherwise(stack, ecs_sg, 3000, alb_sg, {"PrefixListIds": [{"PrefixListId": pl}]})


@scenario(
    "quiet-reader-busy-writer",
    "The writer works at 3 of 4 ACU and the reader idles: the cluster's average (1.75) is low, "
    "the writer is busy but not pinned.",
    area="db",
    kind="control",
)
def busy_writer(stack: Stack) -> None:
    writer = stack.extra["db_instances"][0]
    replace_metric(
        stack, "AWS/RDS", "ServerlessDatabaseCapacity", {"DBInstanceIdentifier": writer}, [3.0] * 60
    )
    replace_metric(
        stack, "AWS/RDS", "ACUUtilization", {"DBInstanceIdentifier": writer}, [75.0] * 60, "Percent"
    )


@scenario(
    "deleted-nat-history",
    "A third NAT gateway was deleted 40 minutes ago (Terraform replaced it): AWS lists it as "
    "deleted for about an hour.",
    area="network",
    kind="control",
)
def deleted_nat(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=stack.outputs["public_subnet_ids"][0], AllocationId=eip)[
        "NatGateway"
    ]["NatGatewayId"]
    backend("ec2", stack).nat_gateways[nat].state = "deleted"


@scenario(
    "main-route-table",
    "The private subnets have no explicit route table: they use the VPC's main table, which "
    "routes to a NAT gateway.",
    area="network",
    kind="control",
)
def main_route_table(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    vpc = stack.outputs["vpc_id"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    main = next(t for t in tables if any(a.get("Main") for a in t.get("Associations", [])))
    ec2.create_route(
        RouteTableId=main["RouteTableId"],
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=stack.outputs["nat_gateway_ids"][0],
    )
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") in stack.outputs["private_app_subnet_ids"]:
                ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])


@scenario(
    "other-env-lock",
    "Staging's Terraform apply died three hours ago; its lock is in the shared lock table.",
    area="deploy",
    kind="control",
)
def other_env_lock(stack: Stack) -> None:
    put_lock(
        stack,
        lock_info(
            stack,
            minutes_ago=180,
            who="carol@ci",
            path=f"{stack.extra['state_bucket']}/staging/terraform.tfstate",
        ),
    )


@scenario(
    "long-apply",
    "An Aurora change is being applied: this environment's lock is 40 minutes old and live.",
    area="deploy",
    kind="control",
)
def long_apply(stack: Stack) -> None:
    put_lock(stack, lock_info(stack, minutes_ago=40, who="dave@ci", path=our_state(stack)))


@scenario(
    "unrelated-writes",
    "The last hours' writes touch nothing a check looks at: tags, uploads, a dashboard.",
    area="all",
    kind="control",
)
def unrelated_writes(stack: Stack) -> None:
    for name, source, resources, who in (
        (
            "CreateTags",
            "ec2.amazonaws.com",
            [("AWS::EC2::SecurityGroup", stack.outputs["ecs_security_group_id"])],
            "alice",
        ),
        (
            "PutObject",
            "s3.amazonaws.com",
            [("AWS::S3::Object", "omni-exports/2026/11/report.csv")],
            "exporter",
        ),
        (
            "PutDashboard",
            "monitoring.amazonaws.com",
            [("AWS::CloudWatch::Dashboard", "api")],
            "bob",
        ),
        (
            "TagResource",
            "ecs.amazonaws.com",
            [("AWS::ECS::Service", stack.names.ecs_service)],
            "finops-bot",
        ),
    ):
        cloudtrail.record(
            stack,
            name,
            source,
            who=who,
            resources=resources,
            request={"tags": [{"key": "team"}]},
            minutes_ago=15,
        )
    cloudtrail.record(
        stack,
        "DescribeSecurityGroups",
        "ec2.amazonaws.com",
        who="mallory",
        resources=[("AWS::EC2::SecurityGroup", stack.outputs["aurora_security_group_id"])],
        minutes_ago=5,
        read_only=True,
    )
    stack.extra["unrelated_writes"] = json.dumps(["alice", "exporter", "bob", "finops-bot"])
