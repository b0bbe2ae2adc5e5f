"""ECS fixes: a new deployment, scaling the service, a task definition with more memory."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ..fargate import valid
from ..models import Risk
from ._registry import Call, FixContext, FixRefused, FixResult, Params, fix

_SERVICE = ("arn:aws:ecs:*:*:service/{project}-*/{project}-*",)


class ServiceRef(Params):
    cluster: str
    service: str


def _service(ctx: FixContext, cluster: str, service: str) -> dict[str, Any]:
    found = ctx.call("ecs", "describe_services", cluster=cluster, services=[service])["services"]
    if not found:
        raise FixRefused(f"service {service} not found in cluster {cluster}")
    return dict(found[0])


def _service_target(p: Any) -> str:
    return f"{p.cluster}/{p.service}"


@fix(
    "ecs.force_new_deployment",
    title="Force a new ECS deployment",
    risk=Risk.LOW,
    calls=[Call("ecs:UpdateService", _SERVICE)],
    reads=("ecs:DescribeServices",),
    target=_service_target,
    terraform="Nothing to change: the service definition is unchanged.",
)
def force_new_deployment(ctx: FixContext, p: ServiceRef) -> FixResult:
    before = _service(ctx, p.cluster, p.service)
    ctx.call("ecs", "update_service", cluster=p.cluster, service=p.service, forceNewDeployment=True)
    after = _service(ctx, p.cluster, p.service)
    return FixResult(
        f"New deployment of {p.service} started",
        {"deployments": len(before.get("deployments", []))},
        {"deployments": len(after.get("deployments", []))},
    )


class ScaleService(ServiceRef):
    desiredCount: int = Field(ge=0, le=200)


def _scalable_target(ctx: FixContext, p: ServiceRef) -> dict[str, Any] | None:
    """The service's Application Auto Scaling target, if it has one."""
    found = ctx.call(
        "application-autoscaling",
        "describe_scalable_targets",
        ServiceNamespace="ecs",
        ResourceIds=[f"service/{p.cluster}/{p.service}"],
        ScalableDimension="ecs:service:DesiredCount",
    ).get("ScalableTargets", [])
    return dict(found[0]) if found else None


@fix(
    "ecs.scale_service",
    title="Scale the ECS service",
    risk=Risk.MEDIUM,
    calls=[
        Call("ecs:UpdateService", _SERVICE),
        Call(
            "application-autoscaling:RegisterScalableTarget",
            note="when the service autoscales: its minimum becomes the new count",
        ),
    ],
    reads=("ecs:DescribeServices", "application-autoscaling:DescribeScalableTargets"),
    target=_service_target,
    terraform="Set `desired_count` on the aws_ecs_service and, when it autoscales, `min_capacity` "
    "on its aws_appautoscaling_target to the new value.",
    caveat="A service under Application Auto Scaling has its desired count reset by the next "
    "scaling activity: its minimum is set to the new count (and its maximum raised if below).",
)
def scale_service(ctx: FixContext, p: ScaleService) -> FixResult:
    before = _service(ctx, p.cluster, p.service)["desiredCount"]
    scalable = _scalable_target(ctx, p)
    bounds_before: dict[str, Any] = {}
    if scalable is not None:
        low, high = int(scalable["MinCapacity"]), int(scalable["MaxCapacity"])
        bounds_before = {"MinCapacity": low, "MaxCapacity": high}
        ctx.call(  # the scaling policies keep the count within these bounds from now on
            "application-autoscaling",
            "register_scalable_target",
            ServiceNamespace="ecs",
            ResourceId=f"service/{p.cluster}/{p.service}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=p.desiredCount,
            MaxCapacity=max(high, p.desiredCount),
        )
    ctx.call(
        "ecs", "update_service", cluster=p.cluster, service=p.service, desiredCount=p.desiredCount
    )
    after = _service(ctx, p.cluster, p.service)["desiredCount"]
    result_before: dict[str, Any] = {"desiredCount": before, **bounds_before}
    result_after: dict[str, Any] = {"desiredCount": after}
    if scalable is not None:
        now = _scalable_target(ctx, p) or {}
        result_after |= {
            "MinCapacity": now.get("MinCapacity"),
            "MaxCapacity": now.get("MaxCapacity"),
        }
    return FixResult(f"{p.service} scaled", result_before, result_after)


class IncreaseMemory(ServiceRef):
    taskDefinition: str
    cpu: str
    memory: str

    @field_validator("memory")
    @classmethod
    def _fargate(cls, memory: str, info: Any) -> str:
        cpu = info.data.get("cpu")
        if cpu and not valid(int(cpu), int(memory)):
            raise ValueError(f"{cpu} CPU / {memory} MiB is not a valid Fargate size")
        return memory


_TD_KEYS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "runtimePlatform",
    "ephemeralStorage",
    "proxyConfiguration",
)


def register_revision(ctx: FixContext, current: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A new revision of ``current`` with ``changes``; returns the registered definition."""
    spec = {k: current[k] for k in _TD_KEYS if current.get(k)}
    spec.update({k: current[k] for k in ("cpu", "memory") if current.get(k)})
    spec.update(changes)
    return dict(ctx.call("ecs", "register_task_definition", **spec)["taskDefinition"])


@fix(
    "ecs.increase_task_memory",
    title="Register a task definition with more memory",
    risk=Risk.MEDIUM,
    calls=[
        Call("ecs:RegisterTaskDefinition"),
        Call("ecs:UpdateService", _SERVICE),
        Call("iam:PassRole", ("arn:aws:iam::*:role/{project}-*",)),
    ],
    reads=("ecs:DescribeTaskDefinition", "ecs:DescribeServices"),
    target=_service_target,
    terraform="Set `memory` (and `cpu` if it changed) on the aws_ecs_task_definition in the ecs "
    "module to the new values.",
)
def increase_task_memory(ctx: FixContext, p: IncreaseMemory) -> FixResult:
    current = ctx.call("ecs", "describe_task_definition", taskDefinition=p.taskDefinition)[
        "taskDefinition"
    ]
    service = _service(ctx, p.cluster, p.service)
    running = service["taskDefinition"].rsplit("/", 1)[-1]
    if running != p.taskDefinition:
        raise FixRefused(f"{p.service} now runs {running}, not {p.taskDefinition}")
    containers = [dict(c) for c in current["containerDefinitions"]]
    for container in containers:  # a container limit equal to the task's grows with it
        if container.get("memory") and int(container["memory"]) >= int(current.get("memory") or 0):
            container["memory"] = int(p.memory)
    registered = register_revision(
        ctx, current, cpu=p.cpu, memory=p.memory, containerDefinitions=containers
    )
    new = f"{registered['family']}:{registered['revision']}"
    ctx.call(
        "ecs",
        "update_service",
        cluster=p.cluster,
        service=p.service,
        taskDefinition=registered["taskDefinitionArn"],
    )
    return FixResult(
        f"{p.service} now runs {new}",
        {
            "taskDefinition": p.taskDefinition,
            "cpu": current.get("cpu"),
            "memory": current.get("memory"),
        },
        {"taskDefinition": new, "cpu": registered.get("cpu"), "memory": registered.get("memory")},
    )


class RollbackService(ServiceRef):
    taskDefinition: str  # the revision to go back to
    fromTaskDefinition: str  # the revision being rolled back (the service must still run it)


@fix(
    "ecs.rollback_service",
    title="Roll the service back to its previous task definition",
    risk=Risk.MEDIUM,
    calls=[Call("ecs:UpdateService", _SERVICE)],
    reads=("ecs:DescribeServices",),
    target=_service_target,
    terraform="Revert the task definition change in Terraform (image tag, environment, sizes) "
    "to the previous revision's, or the next apply rolls the bad revision out again.",
)
def rollback_service(ctx: FixContext, p: RollbackService) -> FixResult:
    service = _service(ctx, p.cluster, p.service)
    running = service["taskDefinition"].rsplit("/", 1)[-1]
    if running != p.fromTaskDefinition:
        raise FixRefused(f"{p.service} now runs {running}, not {p.fromTaskDefinition}")
    ctx.call(
        "ecs",
        "update_service",
        cluster=p.cluster,
        service=p.service,
        taskDefinition=p.taskDefinition,
    )
    after = _service(ctx, p.cluster, p.service)["taskDefinition"].rsplit("/", 1)[-1]
    return FixResult(
        f"{p.service} rolled back to {after}",
        {"taskDefinition": running},
        {"taskDefinition": after},
    )
