"""Environments: which AWS account, region, role and names a run goes against.

One Omni serves several environments (staging and production, often in separate AWS accounts
and regions).  They are declared in the ``OMNI_CONFIG`` file under ``environments``; without
that map, the top-level settings (``OMNI_ENVIRONMENT``, ``AWS_REGION``, ``OMNI_ROLE_ARN`` …)
describe a single environment, as before.

Choosing the environment of a request:

* a command: the explicit argument (``/omni diagnose db staging``, ``--env``) wins; otherwise
  the environment the channel is bound to; otherwise the default;
* an alarm: the account id (and region) in its ARN; otherwise the PagerDuty service it came
  from; otherwise the channel's binding, then the alarm-name prefix, then the default.  An alarm
  from an account no environment names is *unknown*, never diagnosed against the default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import UnknownEnvironment

if TYPE_CHECKING:
    from .settings import Settings

_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# Settings fields an environment may override, by the same names as at top level.
OVERRIDABLE = (
    "region",
    "account_id",
    "role_arn",
    "fix_role_arn",
    "project",
    "terraform_outputs",
    "terraform_lock_table",
    "database_url_secret",
    "db_diag_secret",
    "ecs_cluster",
    "ecs_service",
    "log_group",
    "ecr_repository",
    "task_execution_role",
    "aurora_cluster",
    "waf_acl",
    "alarm_prefix",
    "flow_logs_role",
    "flow_logs_log_group_prefix",
)


class EnvironmentConfig(BaseModel):
    """One environment of the ``environments`` map (unset fields fall back to top level)."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = None
    account_id: str | None = None
    role_arn: str | None = None
    fix_role_arn: str | None = None
    project: str | None = None
    terraform_outputs: str | None = None
    terraform_lock_table: str | None = None
    database_url_secret: str | None = None
    db_diag_secret: str | None = None
    channels: list[str] = Field(default_factory=list)
    pagerduty_services: list[str] = Field(
        default_factory=list, description="PagerDuty service ids or names whose incidents are ours"
    )
    ecs_cluster: str | None = None
    ecs_service: str | None = None
    log_group: str | None = None
    ecr_repository: str | None = None
    task_execution_role: str | None = None
    aurora_cluster: str | None = None
    waf_acl: str | None = None
    alarm_prefix: str | None = None
    flow_logs_role: str | None = None
    flow_logs_log_group_prefix: str | None = None

    @field_validator("account_id", mode="before")
    @classmethod
    def _account(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip()
        if not _ACCOUNT.match(text):
            raise ValueError(f"account_id must be 12 digits (quote it in YAML), got {value!r}")
        return text

    @field_validator("role_arn", "fix_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError(f"not an IAM role ARN: {value!r}")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError(f"not an AWS region: {value!r}")
        return value

    def overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in OVERRIDABLE if getattr(self, k) is not None}


def role_account(role_arn: str | None) -> str | None:
    m = _ROLE_ARN.match(role_arn or "")
    return m.group(1) if m else None


def validate_environments(settings: Settings) -> None:
    """Cross-field rules, raised as ``ValueError`` from the settings model's validator."""
    envs = settings.environments
    if not envs:
        return
    default = settings.default_environment
    if default is not None and default not in envs:
        raise ValueError(
            f"default_environment {default!r} is not one of the environments: {', '.join(envs)}"
        )
    if default is None and len(envs) > 1 and settings.environment not in envs:
        raise ValueError(
            "several environments are configured: name one as default_environment "
            f"(one of {', '.join(envs)})"
        )
    bound: dict[str, str] = {}
    for name, env in envs.items():
        for channel in env.channels:
            if channel in bound and bound[channel] != name:
                raise ValueError(f"channel {channel} is bound to both {bound[channel]} and {name}")
            bound[channel] = name
        account = env.account_id or settings.account_id
        for field in ("role_arn", "fix_role_arn"):
            arn_account = role_account(getattr(env, field))
            if account and arn_account and arn_account != account:
                raise ValueError(
                    f"environments.{name}.{field} is in account {arn_account}, "
                    f"but the environment's account_id is {account}"
                )


def default_name(settings: Settings) -> str:
    if settings.environments:
        if settings.default_environment:
            return settings.default_environment
        if settings.environment in settings.environments:
            return settings.environment
        return next(iter(settings.environments))
    return settings.environment


def names(settings: Settings) -> list[str]:
    return list(settings.environments) or [settings.environment]


def resolve(settings: Settings, name: str | None = None) -> Settings:
    """The settings of one environment: the top level with that environment's fields on top."""
    name = name or default_name(settings)
    if not settings.environments:
        if name == settings.environment:
            return settings
        return settings.model_copy(update={"environment": name})
    env = settings.environments.get(name)
    if env is None:
        raise UnknownEnvironment(name, list(settings.environments))
    return settings.model_copy(update={"environment": name, **env.overrides()})


def for_channel(settings: Settings, channel: str | None) -> str | None:
    if not channel:
        return None
    for name, env in settings.environments.items():
        if channel in env.channels:
            return name
    return None


def choose(settings: Settings, explicit: str | None, channel: str | None) -> str:
    """A command's environment: explicit argument, then channel binding, then the default.

    Raises :class:`UnknownEnvironment` for an explicit name that is not configured.
    """
    if explicit:
        if settings.environments and explicit not in settings.environments:
            raise UnknownEnvironment(explicit, list(settings.environments))
        return explicit
    return for_channel(settings, channel) or default_name(settings)


@dataclass(frozen=True)
class AlarmEnvironment:
    """Where an alarm belongs: ``name`` is None when it comes from an account we do not know."""

    name: str | None
    reason: str


def for_alarm(
    settings: Settings,
    *,
    account: str | None,
    region: str | None,
    alarm_name: str | None,
    channel: str | None,
    pagerduty_services: tuple[str | None, ...] = (),
) -> AlarmEnvironment:
    """The environment an alarm belongs to (see the module docstring for the order)."""
    if not settings.environments:
        mine = settings.account_id or role_account(settings.role_arn)
        if account and mine and account != mine:
            return AlarmEnvironment(None, f"account {account} is not this Omni's ({mine})")
        return AlarmEnvironment(settings.environment, "the only environment")
    envs = {n: resolve(settings, n) for n in settings.environments}
    known_accounts = {n: s.account_id or role_account(s.role_arn) for n, s in envs.items()}
    if account and any(known_accounts.values()):
        candidates = [n for n, acc in known_accounts.items() if acc == account]
        if not candidates:
            where = f"account {account}" + (f" ({region})" if region else "")
            return AlarmEnvironment(None, f"{where} is not in any configured environment")
        if len(candidates) > 1 and region:
            in_region = [n for n in candidates if envs[n].region == region]
            candidates = in_region or candidates
        if len(candidates) == 1:
            return AlarmEnvironment(candidates[0], f"account {account} in its ARN")
        return _narrow(settings, envs, candidates, alarm_name, channel, f"account {account}")
    for service in filter(None, pagerduty_services):
        for n, env in settings.environments.items():
            if service in env.pagerduty_services:
                return AlarmEnvironment(n, f"PagerDuty service {service}")
    return _narrow(settings, envs, list(envs), alarm_name, channel, "no account in the alarm")


def _narrow(
    settings: Settings,
    envs: dict[str, Settings],
    candidates: list[str],
    alarm_name: str | None,
    channel: str | None,
    why: str,
) -> AlarmEnvironment:
    bound = for_channel(settings, channel)
    if bound in candidates:
        return AlarmEnvironment(bound, f"{why}; channel bound to {bound}")
    if alarm_name:
        by_prefix = [n for n in candidates if alarm_name.startswith(envs[n].default_alarm_prefix)]
        if len(by_prefix) == 1:
            return AlarmEnvironment(by_prefix[0], f"{why}; alarm name prefix")
    default = default_name(settings)
    if default in candidates:
        return AlarmEnvironment(default, f"{why}; the default environment")
    return AlarmEnvironment(candidates[0], f"{why}; first of {', '.join(candidates)}")
