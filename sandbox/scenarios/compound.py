"""Compound faults: one cause, failures in several layers, one alarm at the top.

Each is what a responder meets at 3 a.m.: the alarm names a symptom (5XX, unhealthy hosts,
slow responses), and the cause is layers below it.
"""

from __future__ import annotations

from datetime import timedelta

from .. import cloudtrail
from ..metrics import replace_metric
from ..stack import Stack
from . import scenario
from ._faults import (
    alb_metric,
    app_logs,
    ecs_metric,
    event,
    http_5xx,
    new_revision,
    revision_of,
    service,
    stop_tasks,
    targets,
)
from .db import aurora_stopped
from .network import fail_nat


@scenario(
    "outage-db-down",
    "Aurora stopped → the API logs connection errors and its tasks crash → targets unhealthy "
    "→ the ALB answers 503 → the 5XX alarm.",
    area="db",
    alarm="alb-elb-5xx-high",
    kind="compound",
)
def outage_db_down(stack: Stack) -> None:
    aurora_stopped(stack)
    endpoint = stack.outputs["aurora_cluster_endpoint"]
    app_logs(
        stack,
        [
            f"ERROR connect ECONNREFUSED {endpoint}:5432 (SequelizeConnectionRefusedError) #{i}"
            for i in range(30)
        ],
    )
    stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=1,
    )
    targets(
        stack,
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [502]",
    )
    http_5xx(stack, elb_502=20, elb_503=60)


@scenario(
    "nat-failed-image-pull",
    "A NAT gateway failed → its zone's tasks cannot pull their image (i/o timeout) → the "
    "service runs 1 of 2 tasks → an unhealthy-hosts alarm.",
    area="network",
    alarm="alb-unhealthy-hosts",
    kind="compound",
)
def nat_failed_image_pull(stack: Stack) -> None:
    fail_nat(stack)
    repo = f"{stack.extra['account']}.dkr.ecr.{stack.region}.amazonaws.com/{stack.names.ecr_repository}"
    stop_tasks(
        stack,
        3,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull image manifest has been retried 5 time(s): failed "
        f'to do request: Head "https://{repo.split("/")[0]}/v2/{stack.names.ecr_repository}/'
        'manifests/latest": dial tcp 52.94.1.10:443: i/o timeout',
        exit_code=None,
    )
    service(stack).running_count = 1
    event(stack, "is unable to consistently start tasks successfully.", 5)
    targets(stack, "unhealthy", "Target.Timeout", "Request timed out", only=1)


@scenario(
    "sg-revoked-unhealthy",
    "Someone revoked the ECS group's ingress from the ALB → health checks time out → ECS "
    "replaces the tasks → the ALB answers 502/504 → the 5XX alarm.",
    area="alb",
    alarm="alb-elb-5xx-high",
    kind="compound",
)
def sg_revoked_unhealthy(stack: Stack) -> None:
    ecs_sg, alb_sg = stack.outputs["ecs_security_group_id"], stack.outputs["alb_security_group_id"]
    permissions = [
        {
            "IpProtocol": "tcp",
            "FromPort": 3000,
            "ToPort": 3000,
            "UserIdGroupPairs": [{"GroupId": alb_sg}],
        }
    ]
    stack.client("ec2").revoke_security_group_ingress(GroupId=ecs_sg, IpPermissions=permissions)
    cloudtrail.record(
        stack,
        "RevokeSecurityGroupIngress",
        "ec2.amazonaws.com",
        who="alice",
        resources=[("AWS::EC2::SecurityGroup", ecs_sg)],
        request={
            "groupId": ecs_sg,
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 3000,
                        "toPort": 3000,
                        "groups": {"items": [{"groupId": alb_sg}]},
                    }
                ]
            },
        },
        response={"_return": True},
        minutes_ago=14,
    )
    tg = stack.extra["target_group_arn"]
    targets(stack, "unhealthy", "Target.Timeout", "Request timed out")
    stop_tasks(
        stack,
        2,
        stop_code="ServiceSchedulerInitiated",
        reason=f"Task failed ELB health checks in (target-group {tg})",
        exit_code=137,
    )
    http_5xx(stack, elb_502=25, elb_504=30)


@scenario(
    "capacity-pinned-slow",
    "The writer is pinned at max ACU with its CPU at 97% → queries queue → responses take "
    "seconds → the response-time alarm.",
    area="db",
    alarm="alb-response-time-high",
    kind="compound",
)
def capacity_pinned_slow(stack: Stack) -> None:
    from .db import db_capacity

    db_capacity(stack)
    writer = stack.extra["db_instances"][0]
    replace_metric(
        stack,
        "AWS/RDS",
        "CPUUtilization",
        {"DBInstanceIdentifier": writer},
        [35.0] * 45 + [97.0] * 15,
        "Percent",
    )
    replace_metric(
        stack,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        {"LoadBalancer": stack.outputs["alb_arn_suffix"]},
        [0.15] * 45 + [4.2] * 15,
        "Seconds",
    )


@scenario(
    "bad-deploy",
    "A new task definition revision crashes on start (a missing setting) → its tasks stop with "
    "exit 1 → the rollout keeps failing → the application's 5XX alarm.",
    area="deploy",
    alarm="alb-5xx-high",
    kind="compound",
)
def bad_deploy(stack: Stack) -> None:
    good = stack.extra["task_definition_arn"]
    bad = new_revision(stack, environment=[{"name": "DATABASE_POOL", "value": ""}])
    svc = service(stack)
    svc.task_definition = bad  # the service's revision is the new one, as UpdateService left it
    old = svc.deployments[0]
    old.update(status="ACTIVE", runningCount=2)
    svc.deployments.insert(
        0,
        {
            **old,
            "id": "ecs-svc/9000000000000000001",
            "status": "PRIMARY",
            "taskDefinition": bad,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment ecs-svc/9000000000000000001 in progress.",
            "runningCount": 0,
            "pendingCount": 2,
            "failedTasks": 6,
            "createdAt": stack.now - timedelta(minutes=9),
        },
    )
    stop_tasks(
        stack,
        6,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=1,
        task_definition=bad,
        minutes_ago=1,
        every_minutes=1.3,
    )
    app_logs(
        stack,
        [
            "ERROR Unhandled exception: TypeError: Cannot read properties of undefined "
            f"(reading 'DATABASE_POOL') at Object.<anonymous> (/app/dist/config.js:14:33) #{i}"
            for i in range(24)
        ],
    )
    http_5xx(stack, target=15)
    ci = {"who": "deployer", "kind": "AssumedRole", "session": "github-actions-deploy"}
    cloudtrail.record(
        stack,
        "RegisterTaskDefinition",
        "ecs.amazonaws.com",
        resources=[("AWS::ECS::TaskDefinition", revision_of(bad))],
        request={"family": stack.names.ecs_service},
        response={"taskDefinition": {"taskDefinitionArn": bad}},
        minutes_ago=10,
        **ci,  # type: ignore[arg-type]
    )
    cloudtrail.record(
        stack,
        "UpdateService",
        "ecs.amazonaws.com",
        resources=[("AWS::ECS::Service", stack.names.ecs_service)],
        request={
            "cluster": stack.names.ecs_cluster,
            "service": stack.names.ecs_service,
            "taskDefinition": revision_of(bad),
        },
        response={"service": {"taskDefinition": bad, "serviceName": stack.names.ecs_service}},
        minutes_ago=9,
        **ci,  # type: ignore[arg-type]
    )
    stack.extra["previous_task_definition"] = good


@scenario(
    "oom-crashloop",
    "A memory leak: the tasks reach their limit and are killed out of memory, again and again "
    "→ churn → the memory alarm.",
    area="ecs",
    alarm="ecs-memory-high",
    kind="compound",
)
def oom_crashloop(stack: Stack) -> None:
    ecs_metric(stack, "MemoryUtilization", [55.0 + i for i in range(40)] + [99.8] * 20)
    stop_tasks(
        stack,
        5,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=137,
        container_reason="OutOfMemoryError: Container killed due to memory usage",
        every_minutes=9,
    )
    alb_metric(stack, "HTTPCode_Target_5XX_Count", [0.0] * 50 + [6.0] * 10)
