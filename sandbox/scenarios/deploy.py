"""Deployment Failures (guide §7)."""

from __future__ import annotations

import json
from datetime import timedelta

from ..stack import Stack
from . import scenario
from ._faults import service


def lock_info(
    stack: Stack, *, minutes_ago: float, who: str, path: str, version: str = "1.9.5"
) -> dict[str, str]:
    """A lock's ``Info`` as Terraform writes it (RFC 3339 with nanoseconds)."""
    created = stack.now - timedelta(minutes=minutes_ago)
    return {
        "ID": "9db590f1-b6fe-c5f2-2678-8804f089deba",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": who,
        "Version": version,
        "Created": created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
        "Path": path,
    }


def put_lock(stack: Stack, info: dict[str, str]) -> None:
    stack.client("dynamodb").put_item(
        TableName=stack.extra["lock_table"],
        Item={"LockID": {"S": info["Path"]}, "Info": {"S": json.dumps(info)}},
    )


def our_state(stack: Stack) -> str:
    return f"{stack.extra['state_bucket']}/{stack.extra['state_key']}"


@scenario(
    "deploy-state-lock",
    "A Terraform apply died and left this environment's state lock (guide: State Lock Error).",
    area="deploy",
)
def deploy_lock(stack: Stack) -> None:
    put_lock(
        stack, lock_info(stack, minutes_ago=180, who="alice@build-runner-7", path=our_state(stack))
    )


@scenario(
    "deploy-s3-lockfile",
    "Terraform ≥ 1.10 locks with an S3 object: a dead apply's .tflock is left beside the state.",
    area="deploy",
)
def deploy_s3_lockfile(stack: Stack) -> None:
    info = lock_info(
        stack, minutes_ago=200, who="bob@laptop", path=our_state(stack), version="1.10.2"
    )
    stack.client("s3").put_object(
        Bucket=stack.extra["state_bucket"],
        Key=f"{stack.extra['state_key']}.tflock",
        Body=json.dumps(info).encode(),
    )


@scenario(
    "deploy-rollout-failed",
    "The new task definition revision fails its rollout; the circuit breaker stopped it.",
    area="deploy",
)
def deploy_rollout(stack: Stack) -> None:
    from ._faults import new_revision

    bad = new_revision(stack, environment=[{"name": "FEATURE_FLAGS", "value": "{broken"}])
    svc = service(stack)
    old = svc.deployments[0]
    old["status"] = "ACTIVE"
    svc.deployments.insert(
        0,
        {
            **old,
            "id": "ecs-svc/9000000000000000002",
            "status": "PRIMARY",
            "taskDefinition": bad,
            "rolloutState": "FAILED",
            "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
            "failedTasks": 5,
            "runningCount": 0,
            "createdAt": stack.now - timedelta(minutes=25),
        },
    )
