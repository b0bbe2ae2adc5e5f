"""The fixes: each catalogued remediation as a function whose parameters are a pydantic model.

    @fix("rds.start_cluster", StartCluster)
    def start_cluster(ctx: FixContext, p: StartCluster) -> FixResult: ...

A fix reads the state it changes before and after, so the thread shows ``before → after``.
Fixes run with no blind retries (the pool they get has retries off): only the WAF fixes retry,
and only on WAF's optimistic-lock conflict, after re-reading the lock token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .aws import ClientPool
from .errors import AwsCallError, OmniError
from .fargate import valid
from .remediations import CATALOGUE


class FixRefused(OmniError):
    """The fix will not run: the state it was planned against has changed."""


@dataclass
class FixContext:
    pool: ClientPool
    region: str
    dry_run: bool = False

    def client(self, service: str) -> Any:
        return self.pool.client(service, self.region)


@dataclass
class FixResult:
    summary: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    follow_up: dict[str, Any] = field(default_factory=dict)  # e.g. a scheduled re-enable


@dataclass(frozen=True)
class FixSpecImpl:
    id: str
    params: type[BaseModel]
    fn: Callable[[FixContext, Any], FixResult]


FIXES: dict[str, FixSpecImpl] = {}


def fix(
    fix_id: str, params: type[BaseModel]
) -> Callable[[Callable[[FixContext, Any], FixResult]], Callable[[FixContext, Any], FixResult]]:
    if fix_id not in CATALOGUE:
        raise ValueError(f"{fix_id} is not in the fix catalogue")

    def register(
        fn: Callable[[FixContext, Any], FixResult],
    ) -> Callable[[FixContext, Any], FixResult]:
        FIXES[fix_id] = FixSpecImpl(fix_id, params, fn)
        return fn

    return register


def run_fix(fix_id: str, params: dict[str, Any], ctx: FixContext) -> FixResult:
    spec = FIXES[fix_id]
    model = spec.params.model_validate(params)
    if ctx.dry_run:
        return FixResult(
            summary=f"dry run: would call {CATALOGUE[fix_id].api} with {model.model_dump()}"
        )
    return spec.fn(ctx, model)


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _call(ctx: FixContext, service: str, method: str, /, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    client = ctx.client(service)
    try:
        return getattr(client, method)(**kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise AwsCallError(
            service,
            client.meta.method_to_api_mapping.get(method, method),
            str(err.get("Code")),
            str(err.get("Message")),
        ) from exc
    except BotoCoreError as exc:
        raise AwsCallError(service, method, type(exc).__name__, str(exc)) from exc


# --- RDS ------------------------------------------------------------------------------------


class StartCluster(_P):
    DBClusterIdentifier: str


def _cluster(ctx: FixContext, name: str) -> dict[str, Any]:
    return dict(
        _call(ctx, "rds", "describe_db_clusters", DBClusterIdentifier=name)["DBClusters"][0]
    )


@fix("rds.start_cluster", StartCluster)
def start_cluster(ctx: FixContext, p: StartCluster) -> FixResult:
    before = _cluster(ctx, p.DBClusterIdentifier)["Status"]
    if before != "stopped":
        raise FixRefused(f"{p.DBClusterIdentifier} is {before}, not stopped: nothing to start")
    _call(ctx, "rds", "start_db_cluster", DBClusterIdentifier=p.DBClusterIdentifier)
    after = _cluster(ctx, p.DBClusterIdentifier)["Status"]
    return FixResult(f"Started {p.DBClusterIdentifier}", {"Status": before}, {"Status": after})


class RaiseMaxCapacity(_P):
    DBClusterIdentifier: str
    MinCapacity: float = Field(ge=0, le=256)
    MaxCapacity: float = Field(gt=0, le=256)


@fix("rds.raise_max_capacity", RaiseMaxCapacity)
def raise_max_capacity(ctx: FixContext, p: RaiseMaxCapacity) -> FixResult:
    before = _cluster(ctx, p.DBClusterIdentifier).get("ServerlessV2ScalingConfiguration", {})
    if float(before.get("MaxCapacity", 0)) >= p.MaxCapacity:
        raise FixRefused(f"max capacity is already {before.get('MaxCapacity')} ACU")
    _call(
        ctx,
        "rds",
        "modify_db_cluster",
        DBClusterIdentifier=p.DBClusterIdentifier,
        ApplyImmediately=True,
        ServerlessV2ScalingConfiguration={
            "MinCapacity": p.MinCapacity,
            "MaxCapacity": p.MaxCapacity,
        },
    )
    after = _cluster(ctx, p.DBClusterIdentifier).get("ServerlessV2ScalingConfiguration", {})
    return FixResult(
        f"Max capacity of {p.DBClusterIdentifier} raised",
        {"MaxCapacity": before.get("MaxCapacity")},
        {"MaxCapacity": after.get("MaxCapacity")},
    )


# --- ECS ------------------------------------------------------------------------------------


class ServiceRef(_P):
    cluster: str
    service: str


def _service(ctx: FixContext, p: ServiceRef) -> dict[str, Any]:
    return dict(
        _call(ctx, "ecs", "describe_services", cluster=p.cluster, services=[p.service])["services"][
            0
        ]
    )


@fix("ecs.force_new_deployment", ServiceRef)
def force_new_deployment(ctx: FixContext, p: ServiceRef) -> FixResult:
    before = _service(ctx, p)
    _call(
        ctx, "ecs", "update_service", cluster=p.cluster, service=p.service, forceNewDeployment=True
    )
    after = _service(ctx, p)
    return FixResult(
        f"New deployment of {p.service} started",
        {"deployments": len(before.get("deployments", []))},
        {"deployments": len(after.get("deployments", []))},
    )


class ScaleService(ServiceRef):
    desiredCount: int = Field(ge=0, le=200)


@fix("ecs.scale_service", ScaleService)
def scale_service(ctx: FixContext, p: ScaleService) -> FixResult:
    before = _service(ctx, ServiceRef(cluster=p.cluster, service=p.service))["desiredCount"]
    _call(
        ctx,
        "ecs",
        "update_service",
        cluster=p.cluster,
        service=p.service,
        desiredCount=p.desiredCount,
    )
    after = _service(ctx, ServiceRef(cluster=p.cluster, service=p.service))["desiredCount"]
    return FixResult(f"{p.service} scaled", {"desiredCount": before}, {"desiredCount": after})


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


@fix("ecs.increase_task_memory", IncreaseMemory)
def increase_task_memory(ctx: FixContext, p: IncreaseMemory) -> FixResult:
    current = _call(ctx, "ecs", "describe_task_definition", taskDefinition=p.taskDefinition)[
        "taskDefinition"
    ]
    service = _service(ctx, ServiceRef(cluster=p.cluster, service=p.service))
    if service["taskDefinition"].rsplit("/", 1)[-1] != p.taskDefinition:
        raise FixRefused(
            f"{p.service} now runs {service['taskDefinition'].rsplit('/', 1)[-1]}, not {p.taskDefinition}"
        )
    spec = {k: current[k] for k in _TD_KEYS if current.get(k)}
    for container in spec["containerDefinitions"]:
        if container.get("memory") and int(container["memory"]) >= int(current.get("memory") or 0):
            container["memory"] = int(
                p.memory
            )  # a container limit equal to the task's grows with it
    registered = _call(ctx, "ecs", "register_task_definition", **spec, cpu=p.cpu, memory=p.memory)[
        "taskDefinition"
    ]
    new = f"{registered['family']}:{registered['revision']}"
    _call(
        ctx,
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


# --- ELB, SNS, CloudWatch -------------------------------------------------------------------


class IdleTimeout(_P):
    LoadBalancerArn: str
    IdleTimeoutSeconds: int = Field(ge=1, le=4000)


def _idle(ctx: FixContext, arn: str) -> int:
    attrs = _call(ctx, "elbv2", "describe_load_balancer_attributes", LoadBalancerArn=arn)[
        "Attributes"
    ]
    return int(next((a["Value"] for a in attrs if a["Key"] == "idle_timeout.timeout_seconds"), 60))


@fix("elbv2.raise_idle_timeout", IdleTimeout)
def raise_idle_timeout(ctx: FixContext, p: IdleTimeout) -> FixResult:
    before = _idle(ctx, p.LoadBalancerArn)
    _call(
        ctx,
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


class TestNotification(_P):
    TopicArn: str
    Subject: str = "Test Alarm"
    Message: str = "Test alarm notification"


@fix("sns.send_test_notification", TestNotification)
def send_test_notification(ctx: FixContext, p: TestNotification) -> FixResult:
    sent = _call(ctx, "sns", "publish", TopicArn=p.TopicArn, Subject=p.Subject, Message=p.Message)
    return FixResult("Test notification published", {}, {"MessageId": sent["MessageId"]})


class AlarmNames(_P):
    AlarmNames: list[str] = Field(min_length=1, max_length=100)


class MuteAlarms(AlarmNames):
    ReenableAfterMinutes: int = Field(60, ge=5, le=24 * 60)


def _actions_enabled(ctx: FixContext, names: list[str]) -> dict[str, bool]:
    alarms = _call(ctx, "cloudwatch", "describe_alarms", AlarmNames=names)["MetricAlarms"]
    return {a["AlarmName"]: bool(a["ActionsEnabled"]) for a in alarms}


@fix("cloudwatch.enable_alarm_actions", AlarmNames)
def enable_alarm_actions(ctx: FixContext, p: AlarmNames) -> FixResult:
    before = _actions_enabled(ctx, p.AlarmNames)
    _call(ctx, "cloudwatch", "enable_alarm_actions", AlarmNames=p.AlarmNames)
    return FixResult(
        "Alarm actions enabled",
        {"ActionsEnabled": before},
        {"ActionsEnabled": _actions_enabled(ctx, p.AlarmNames)},
    )


@fix("cloudwatch.disable_alarm_actions", MuteAlarms)
def disable_alarm_actions(ctx: FixContext, p: MuteAlarms) -> FixResult:
    before = _actions_enabled(ctx, p.AlarmNames)
    _call(ctx, "cloudwatch", "disable_alarm_actions", AlarmNames=p.AlarmNames)
    return FixResult(
        f"Alarm actions muted for {p.ReenableAfterMinutes} min",
        {"ActionsEnabled": before},
        {"ActionsEnabled": _actions_enabled(ctx, p.AlarmNames)},
        follow_up={"reenable_after_minutes": p.ReenableAfterMinutes, "alarm_names": p.AlarmNames},
    )


# --- EC2 ------------------------------------------------------------------------------------


class AllowEcsToAurora(_P):
    GroupId: str
    SourceSecurityGroupId: str
    Port: int = Field(5432, ge=1, le=65535)


@fix("ec2.allow_ecs_to_aurora", AllowEcsToAurora)
def allow_ecs_to_aurora(ctx: FixContext, p: AllowEcsToAurora) -> FixResult:
    def rules() -> list[str]:
        group = _call(ctx, "ec2", "describe_security_groups", GroupIds=[p.GroupId])[
            "SecurityGroups"
        ][0]
        return [
            f"{perm.get('FromPort')}-{perm.get('ToPort')} from {pair['GroupId']}"
            for perm in group.get("IpPermissions", [])
            for pair in perm.get("UserIdGroupPairs", [])
        ]

    before = rules()
    try:
        _call(
            ctx,
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
        {"ingress": rules()},
    )


# --- WAF ------------------------------------------------------------------------------------


def _with_lock_retry(action: Callable[[], Any], attempts: int = 4) -> Any:
    for attempt in range(attempts):
        try:
            return action()
        except AwsCallError as exc:
            if exc.code != "WAFOptimisticLockException" or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


class AllowlistIp(_P):
    IPSetName: str
    Scope: str = "REGIONAL"
    Address: str = Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")


@fix("wafv2.allowlist_ip", AllowlistIp)
def allowlist_ip(ctx: FixContext, p: AllowlistIp) -> FixResult:
    sets = _call(ctx, "wafv2", "list_ip_sets", Scope=p.Scope, Limit=100)["IPSets"]
    found = next((s for s in sets if s["Name"] == p.IPSetName), None)
    if found is None:
        created = _call(
            ctx,
            "wafv2",
            "create_ip_set",
            Name=p.IPSetName,
            Scope=p.Scope,
            IPAddressVersion="IPV4",
            Addresses=[p.Address],
            Description="Allow-list managed by Omni; reference it from an allow rule in the web ACL",
        )
        return FixResult(
            f"IP set {p.IPSetName} created with {p.Address}",
            {"addresses": None},
            {"addresses": [p.Address], "id": created["Summary"]["Id"]},
        )
    before: list[str] = []

    def update() -> list[str]:
        nonlocal before
        current = _call(ctx, "wafv2", "get_ip_set", Name=p.IPSetName, Scope=p.Scope, Id=found["Id"])
        before = list(current["IPSet"]["Addresses"])
        addresses = sorted(set(before) | {p.Address})
        _call(
            ctx,
            "wafv2",
            "update_ip_set",
            Name=p.IPSetName,
            Scope=p.Scope,
            Id=found["Id"],
            Addresses=addresses,
            LockToken=current["LockToken"],
        )
        return addresses

    after = _with_lock_retry(update)
    return FixResult(
        f"{p.Address} added to {p.IPSetName}", {"addresses": before}, {"addresses": after}
    )


class RaiseRateLimit(_P):
    Name: str
    Id: str
    Scope: str = "REGIONAL"
    RuleName: str
    Limit: int = Field(ge=10, le=2_000_000_000)


@fix("wafv2.raise_rate_limit", RaiseRateLimit)
def raise_rate_limit(ctx: FixContext, p: RaiseRateLimit) -> FixResult:
    before_limit: Any = None

    def update() -> int:
        nonlocal before_limit
        current = _call(ctx, "wafv2", "get_web_acl", Name=p.Name, Scope=p.Scope, Id=p.Id)
        acl = current["WebACL"]
        rules = acl.get("Rules", [])
        rule = next((r for r in rules if r["Name"] == p.RuleName), None)
        if rule is None or "RateBasedStatement" not in rule.get("Statement", {}):
            raise FixRefused(f"no rate-based rule {p.RuleName} in {p.Name}")
        before_limit = rule["Statement"]["RateBasedStatement"]["Limit"]
        if before_limit >= p.Limit:
            raise FixRefused(f"the limit is already {before_limit}")
        rule["Statement"]["RateBasedStatement"]["Limit"] = p.Limit
        extra = {
            k: acl[k]
            for k in (
                "Description",
                "CustomResponseBodies",
                "CaptchaConfig",
                "ChallengeConfig",
                "TokenDomains",
                "AssociationConfig",
            )
            if acl.get(k)
        }
        _call(
            ctx,
            "wafv2",
            "update_web_acl",
            Name=p.Name,
            Scope=p.Scope,
            Id=p.Id,
            DefaultAction=acl["DefaultAction"],
            Rules=rules,
            VisibilityConfig=acl["VisibilityConfig"],
            LockToken=current["LockToken"],
            **extra,
        )
        return p.Limit

    after = _with_lock_retry(update)
    return FixResult(
        f"Rate limit of {p.RuleName} raised", {"Limit": before_limit}, {"Limit": after}
    )


# --- Terraform ------------------------------------------------------------------------------


class ReleaseLock(_P):
    TableName: str
    LockID: str
    Info: str


@fix("terraform.release_state_lock", ReleaseLock)
def release_state_lock(ctx: FixContext, p: ReleaseLock) -> FixResult:
    try:
        _call(
            ctx,
            "dynamodb",
            "delete_item",
            TableName=p.TableName,
            Key={"LockID": {"S": p.LockID}},
            ConditionExpression="#info = :info",
            ExpressionAttributeNames={"#info": "Info"},
            ExpressionAttributeValues={":info": {"S": p.Info}},
        )
    except AwsCallError as exc:
        if exc.code == "ConditionalCheckFailedException":
            raise FixRefused(
                "the lock changed since it was shown (another terraform run holds it now): not released"
            ) from exc
        raise
    return FixResult(f"Lock {p.LockID} released", {"lock": "held"}, {"lock": "released"})
