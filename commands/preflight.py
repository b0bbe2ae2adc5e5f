"""``omni config check``: resolve every configured environment and say what is missing.

For each environment: assume its roles, compare the account its credentials land in with the
configured ``account_id``, read its Terraform outputs, and look up each resource the runbooks
name.  Every line says what was looked for and where; the exit code is non-zero when anything
a runbook needs is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .aws import AwsCaller, ClientPool
from .context import CheckContext
from .credentials import Sessions
from .errors import AwsCallError, OmniError, ResourceNotFound
from .names import Names
from .settings import Settings
from .terraform import load_outputs

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Line:
    environment: str
    item: str
    status: str
    detail: str


def _error(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def check_environment(settings: Settings, name: str, base: boto3.session.Session) -> list[Line]:
    env = settings.for_environment(name)
    lines: list[Line] = []

    def add(item: str, status: str, detail: str) -> None:
        lines.append(Line(name, item, status, detail))

    where = f"region {env.region}" + (f", account {env.account_id}" if env.account_id else "")
    sts = base.client("sts", region_name=env.region)
    for label, role in (("role", env.role_arn), ("fix role", env.fix_role_arn)):
        if not role:
            continue
        try:
            sts.assume_role(RoleArn=role, RoleSessionName="omni-config-check", DurationSeconds=900)
            add(label, OK, f"assumed {role}")
        except (ClientError, BotoCoreError) as exc:
            add(label, FAIL, f"cannot assume {role}: {_error(exc)}")
            if label == "role":
                return lines
    session = Sessions(base).for_role(env.role_arn, region=env.region, name="omni-config-check")
    pool = ClientPool(session, max_attempts=2)
    try:
        identity = pool.client("sts", env.region).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        add("credentials", FAIL, f"no usable AWS credentials: {_error(exc)}")
        return lines
    account = str(identity["Account"])
    if env.account_id and account != env.account_id:
        add(
            "credentials",
            FAIL,
            f"credentials land in account {account}, but account_id is {env.account_id}",
        )
        return lines
    add("credentials", OK, f"account {account} as {identity['Arn']}")

    try:
        outputs = load_outputs(env.terraform_outputs, lambda: pool.client("s3", env.region))
        add(
            "terraform outputs",
            OK,
            f"{len(outputs)} outputs from {env.terraform_outputs}"
            if env.terraform_outputs
            else "none set: names follow the guide's convention",
        )
    except OmniError as exc:
        add("terraform outputs", FAIL, str(exc))
        outputs = {}
    names = Names.from_settings(env, name).with_outputs(env, outputs)
    ctx = CheckContext(
        settings=env,
        names=names,
        region=env.region,
        aws=AwsCaller(pool, env.region),
        outputs=outputs,
    )

    def look(item: str, fn: Callable[[], str], required: bool = True) -> Callable[[], Line]:
        def run() -> Line:
            try:
                return Line(name, item, OK, fn())
            except ResourceNotFound as exc:
                detail = f"{exc.kind} {exc.name!r} not found in {exc.where}"
            except AwsCallError as exc:
                detail = f"{exc.service}:{exc.operation} {exc.code}: {exc.message}"
            return Line(name, item, FAIL if required else WARN, detail)

        return run

    def cluster() -> str:
        found = ctx.aws.call("ecs", "describe_clusters", clusters=[names.ecs_cluster])
        active = [c for c in found.get("clusters", []) if c.get("status") == "ACTIVE"]
        if not active:
            raise ResourceNotFound("ECS cluster", names.ecs_cluster, where)
        return names.ecs_cluster

    def log_group() -> str:
        wanted = ctx.log_groups()  # where the errors are read: the task definition's groups
        for group in wanted:
            found = ctx.aws.call("logs", "describe_log_groups", logGroupNamePrefix=group)
            if not any(g["logGroupName"] == group for g in found.get("logGroups", [])):
                raise ResourceNotFound("log group", group, where)
        return ", ".join(wanted)

    def alarms() -> str:
        found = ctx.aws.call(
            "cloudwatch", "describe_alarms", AlarmNamePrefix=names.alarm_prefix, MaxRecords=100
        ).get("MetricAlarms", [])
        if not found:
            raise ResourceNotFound("alarms named", names.alarm_prefix + "*", where)
        return f"{len(found)} alarms named {names.alarm_prefix}*"

    def secret() -> str:
        ctx.aws.call("secretsmanager", "describe_secret", SecretId=env.db_url_secret_id)
        return env.db_url_secret_id

    def _secret() -> str:
        try:
            return secret()
        except AwsCallError as exc:
            if exc.code == "ResourceNotFoundException":
                raise ResourceNotFound("secret", env.db_url_secret_id, where) from exc
            raise

    # independent lookups: at once, reported in this order
    lookups = [
        look("ECS cluster", cluster),
        look("ECS service", lambda: str(ctx.ecs_service()["serviceName"])),
        look("load balancer", lambda: str(ctx.load_balancer()["LoadBalancerName"])),
        look("Aurora cluster", lambda: str(ctx.aurora_cluster()["DBClusterIdentifier"])),
        look("log group", log_group),
        look("WAF web ACL", lambda: str(ctx.web_acl()["Name"]), required=False),
        look("alarms", alarms, required=False),
        look("DB URL secret", _secret, required=False),
    ]
    with ThreadPoolExecutor(max_workers=len(lookups), thread_name_prefix="omni-config") as workers:
        lines += workers.map(lambda lookup: lookup(), lookups)
    return lines


def run(settings: Settings, base: boto3.session.Session | None = None) -> list[Line]:
    base = base or boto3.session.Session()
    lines: list[Line] = []
    for name in settings.environment_names():
        try:
            lines.extend(check_environment(settings, name, base))
        except Exception as exc:  # one environment's surprise never hides the others
            logger.exception("config check of %s crashed", name)
            lines.append(Line(name, "check", FAIL, _error(exc)))
    return lines


def table(lines: list[Line], default: str, channels: dict[str, list[str]]) -> str:
    out: list[str] = []
    width = max((len(line.item) for line in lines), default=10)
    current = None
    for line in lines:
        if line.environment != current:
            current = line.environment
            mark = " (default)" if current == default else ""
            bound = channels.get(current) or []
            out.append(f"\n{current}{mark}" + (f" — channels {', '.join(bound)}" if bound else ""))
        out.append(f"  {line.status:<4}  {line.item:<{width}}  {line.detail}")
    failed = sum(1 for line in lines if line.status == FAIL)
    warned = sum(1 for line in lines if line.status == WARN)
    out.append(
        f"\n{'problems found' if failed else 'ready'}: {failed} missing, {warned} warnings, "
        f"{len(lines) - failed - warned} ok"
    )
    return "\n".join(out).lstrip("\n") + "\n"


def as_json(lines: list[Line]) -> list[dict[str, Any]]:
    return [line.__dict__ for line in lines]
