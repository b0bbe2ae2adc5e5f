"""ECS Service Issues (guide §1), with the stop codes and reasons ECS really writes."""

from __future__ import annotations

import json

from ..stack import Stack
from . import scenario
from ._faults import app_logs, ecs_metric, event, service, stop_tasks, targets


def _repo(stack: Stack) -> str:
    account, region = stack.extra["account"], stack.region
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{stack.names.ecr_repository}"


@scenario(
    "ecs-oom",
    "Tasks killed out of memory, exit 137 (guide: Out of Memory / Insufficient CPU/Memory).",
    area="ecs",
    alarm="ecs-memory-high",
)
def ecs_oom(stack: Stack) -> None:
    stop_tasks(
        stack,
        4,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=137,
        container_reason="OutOfMemoryError: Container killed due to memory usage",
    )
    ecs_metric(stack, "MemoryUtilization", [60.0] * 45 + [99.5] * 15)


@scenario(
    "ecs-image-pull",
    "The image tag is gone from ECR; tasks cannot pull it (guide: Image Pull Error).",
    area="ecs",
)
def ecs_image_pull(stack: Stack) -> None:
    stack.client("ecr").batch_delete_image(
        repositoryName=stack.names.ecr_repository, imageIds=[{"imageTag": "latest"}]
    )
    ref = f"{_repo(stack)}:latest"
    stop_tasks(
        stack,
        2,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull image manifest has been retried 5 time(s): failed "
        f"to resolve ref {ref}: {ref}: not found",
        exit_code=None,
    )
    event(stack, "is unable to consistently start tasks successfully.", 4)


@scenario(
    "ecs-execution-role",
    "The task execution role lost its ECR permissions (guide: verify task execution role).",
    area="ecs",
)
def ecs_execution_role(stack: Stack) -> None:
    stack.client("iam").delete_role_policy(
        RoleName=stack.names.task_execution_role, PolicyName="ECSTaskExecutionPolicy"
    )
    role = stack.names.task_execution_role
    stop_tasks(
        stack,
        2,
        stop_code="TaskFailedToStart",
        reason="ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve ecr registry auth: service call has been "
        f"retried 3 time(s): AccessDeniedException: User: arn:aws:sts::{stack.extra['account']}:"
        f"assumed-role/{role}/7f3c is not authorized to perform: ecr:GetAuthorizationToken",
        exit_code=None,
    )


@scenario(
    "ecs-secrets-denied",
    "The execution role may no longer read the DB URL secret; tasks cannot start "
    "(ResourceInitializationError: unable to pull secrets).",
    area="ecs",
)
def ecs_secrets_denied(stack: Stack) -> None:
    iam, ecs = stack.client("iam"), stack.client("ecs")
    role = stack.names.task_execution_role
    iam.put_role_policy(
        RoleName=role,
        PolicyName="ECSTaskExecutionPolicy",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "ecr:GetAuthorizationToken",
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:GetDownloadUrlForLayer",
                            "ecr:BatchGetImage",
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    secret_arn = stack.client("secretsmanager").describe_secret(
        SecretId=stack.extra["db_url_secret"]
    )["ARN"]
    current = ecs.describe_task_definition(taskDefinition=stack.extra["task_definition_arn"])[
        "taskDefinition"
    ]
    containers = [
        dict(c, secrets=[{"name": "DATABASE_URL", "valueFrom": secret_arn}])
        for c in current["containerDefinitions"]
    ]
    keys = ("family", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory")
    new = ecs.register_task_definition(
        **{k: current[k] for k in keys if current.get(k)}, containerDefinitions=containers
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(
        cluster=stack.names.ecs_cluster, service=stack.names.ecs_service, taskDefinition=new
    )
    stack.extra["task_definition_arn"] = new
    stop_tasks(
        stack,
        3,
        stop_code="TaskFailedToStart",
        reason="ResourceInitializationError: unable to pull secrets or registry auth: execution "
        "resource retrieval failed: unable to retrieve secret from asm: service call has been "
        "retried 1 time(s): failed to fetch secret "
        f"{secret_arn} from secrets manager: AccessDeniedException: User: "
        f"arn:aws:sts::{stack.extra['account']}:assumed-role/{role}/1a2b is not authorized to "
        "perform: secretsmanager:GetSecretValue",
        exit_code=None,
        task_definition=new,
    )


@scenario(
    "ecs-subnet-ips",
    "The private app subnets are out of IP addresses (guide: Subnet IP Exhaustion).",
    area="ecs",
)
def ecs_subnet_ips(stack: Stack) -> None:
    from ..moto_ext import backend

    ec2 = backend("ec2", stack)
    for sid in stack.outputs["private_app_subnet_ids"]:
        s = ec2.get_subnet(sid)
        s._available_ip_addresses -= int(s.available_ip_address_count)
    stop_tasks(
        stack,
        1,
        stop_code="TaskFailedToStart",
        reason="ResourceInitializationError: failed to configure ENI: insufficient free "
        "addresses in subnet",
        exit_code=None,
    )


@scenario(
    "ecs-health-check",
    "Tasks killed by a strict container health check (guide: Failed Health Checks).",
    area="ecs",
)
def ecs_health(stack: Stack) -> None:
    stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Task failed container health checks",
        exit_code=137,
    )


@scenario(
    "ecs-elb-health-kills",
    "The ALB health check on /health answers 503; ECS replaces the tasks it marks unhealthy "
    "(exit 137, no out-of-memory reason).",
    area="alb",
    alarm="alb-unhealthy-hosts",
)
def ecs_elb_health_kills(stack: Stack) -> None:
    tg = stack.extra["target_group_arn"]
    targets(
        stack,
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [503]",
    )
    stop_tasks(
        stack,
        3,
        stop_code="ServiceSchedulerInitiated",
        reason=f"Task failed ELB health checks in (target-group {tg})",
        exit_code=137,
    )
    event(stack, f"has stopped 1 running tasks: (task 9f2e). (target-group {tg}) unhealthy.", 3)


@scenario(
    "ecs-app-crash",
    "The application crashes on start with stack traces (guide: Application Crashes).",
    area="ecs",
)
def ecs_crash(stack: Stack) -> None:
    stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=1,
    )
    app_logs(
        stack,
        [
            f"ERROR Unhandled exception: TypeError: Cannot read properties of undefined "
            f"(reading 'id') #{i}"
            for i in range(25)
        ],
    )


@scenario(
    "ecs-tasks-not-running",
    "0/2 tasks running; the service cannot place tasks (guide: ECS Tasks Failing to Start).",
    area="ecs",
)
def ecs_not_running(stack: Stack) -> None:
    service(stack).running_count = 0
    event(
        stack,
        "was unable to place a task because no container instance met all of its requirements.",
        2,
    )
    event(stack, "failed to launch a task with (error ECS was unable to assume the role).", 1)
