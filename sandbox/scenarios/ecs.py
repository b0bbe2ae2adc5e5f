"""ECS Service Issues (guide §1): tasks failing to start, restarting, out of memory."""

from __future__ import annotations

from datetime import timedelta

from ..moto_ext import backend
from ..stack import Stack
from . import scenario
from ._faults import app_logs, ecs_metric, service, stop_tasks


@scenario(
    "ecs-oom",
    "Tasks killed out of memory, exit 137 (guide: Out of Memory / Insufficient CPU/Memory).",
    area="ecs",
    alarm="ecs-memory-high",
)
def _ecs_oom(stack: Stack) -> None:
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
    alarm="ecs-memory-high",
)
def _ecs_image_pull(stack: Stack) -> None:
    stack.client("ecr").batch_delete_image(
        repositoryName=stack.names.ecr_repository, imageIds=[{"imageTag": "latest"}]
    )
    stop_tasks(
        stack,
        2,
        stop_code="TaskFailedToStart",
        reason="CannotPullContainerError: pull image manifest has been retried 5 time(s): manifest unknown",
        exit_code=None,
    )


@scenario(
    "ecs-execution-role",
    "The task execution role lost its ECR permissions (guide: verify task execution role).",
    area="ecs",
    alarm="ecs-memory-high",
)
def _ecs_execution_role(stack: Stack) -> None:
    stack.client("iam").delete_role_policy(
        RoleName=stack.names.task_execution_role, PolicyName="ECSTaskExecutionPolicy"
    )


@scenario(
    "ecs-subnet-ips",
    "The private app subnets are out of IP addresses (guide: Subnet IP Exhaustion).",
    area="ecs",
    alarm="ecs-memory-high",
)
def _ecs_subnet_ips(stack: Stack) -> None:
    ec2 = backend("ec2", stack)
    for sid in stack.outputs["private_app_subnet_ids"]:
        s = ec2.get_subnet(sid)
        s._available_ip_addresses -= int(s.available_ip_address_count)
    stop_tasks(
        stack,
        1,
        stop_code="TaskFailedToStart",
        reason="ResourceInitializationError: unable to assign ENI: insufficient free addresses in subnet",
        exit_code=None,
    )


@scenario(
    "ecs-health-check",
    "Tasks stopped by failing container health checks (guide: Failed Health Checks).",
    area="ecs",
    alarm="ecs-memory-high",
)
def _ecs_health(stack: Stack) -> None:
    stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Task failed container health checks",
        exit_code=None,
    )


@scenario(
    "ecs-app-crash",
    "The application crashes on start with stack traces (guide: Application Crashes).",
    area="ecs",
    alarm="ecs-memory-high",
)
def _ecs_crash(stack: Stack) -> None:
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
            f"ERROR Unhandled exception: TypeError: Cannot read properties of undefined (reading 'id') #{i}"
            for i in range(25)
        ],
    )


@scenario(
    "ecs-tasks-not-running",
    "0/2 tasks running; the service cannot place tasks (guide: ECS Tasks Failing to Start).",
    area="ecs",
    alarm="ecs-memory-high",
)
def _ecs_not_running(stack: Stack) -> None:
    svc = service(stack)
    svc.running_count = 0
    svc.events.insert(
        0,
        {
            "id": "e1",
            "createdAt": stack.now - timedelta(minutes=2),
            "message": f"(service {stack.names.ecs_service}) was unable to place a task because no container instance met all of its requirements.",
        },
    )
    svc.events.insert(
        0,
        {
            "id": "e2",
            "createdAt": stack.now - timedelta(minutes=1),
            "message": f"(service {stack.names.ecs_service}) failed to launch a task with (error ECS was unable to assume the role).",
        },
    )
