"""Deployment Failures (guide §7)."""

from __future__ import annotations

import json
from datetime import timedelta

from ..stack import Stack
from . import scenario
from ._faults import service


@scenario(
    "deploy-state-lock",
    "A Terraform apply died and left its state lock (guide: State Lock Error).",
    area="deploy",
)
def _deploy_lock(stack: Stack) -> None:
    info = {
        "ID": "9db590f1-b6fe-c5f2-2678-8804f089deba",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "alice@build-runner-7",
        "Version": "1.9.5",
        "Created": (stack.now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "Path": f"{stack.names.project}-tfstate/{stack.names.environment}/terraform.tfstate",
    }
    stack.client("dynamodb").put_item(
        TableName=stack.extra["lock_table"],
        Item={"LockID": {"S": info["Path"]}, "Info": {"S": json.dumps(info)}},
    )


@scenario(
    "deploy-rollout-failed",
    "The last ECS deployment failed and the circuit breaker rolled it back.",
    area="deploy",
)
def _deploy_rollout(stack: Stack) -> None:
    svc = service(stack)
    svc.deployments[0]["rolloutState"] = "FAILED"
    svc.deployments[0]["rolloutStateReason"] = (
        "ECS deployment circuit breaker: tasks failed to start."
    )
    svc.deployments[0]["failedTasks"] = 5
