"""One typed ``Settings`` for every Omni process (DESIGN.md §3).

Values come from environment variables and, when ``OMNI_CONFIG`` names a YAML file, from that
file (environment variables win).  Secrets are ``SecretStr`` and are never printed.  Processes
that need Slack call :meth:`Settings.require_slack`, which fails fast naming the variable.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from . import environments as _environments
from .environments import EnvironmentConfig
from .errors import ConfigError

_PLACEHOLDERS = ("changeme", "change-me", "replace", "your-", "xxxx", "todo", "placeholder", "<")


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    project: str = Field("omnirapeutic", validation_alias=_env("OMNI_PROJECT", "project"))
    environment: str = Field("production", validation_alias=_env("OMNI_ENVIRONMENT", "environment"))
    region: str = Field(
        "us-east-1", validation_alias=_env("AWS_REGION", "AWS_DEFAULT_REGION", "region")
    )
    account_id: str | None = Field(None, validation_alias=_env("OMNI_ACCOUNT_ID", "account_id"))
    role_arn: str | None = Field(
        None,
        validation_alias=_env("OMNI_ROLE_ARN", "role_arn"),
        description="role assumed for checks (None: the process's own credentials)",
    )
    default_environment: str | None = Field(
        None, validation_alias=_env("OMNI_DEFAULT_ENVIRONMENT", "default_environment")
    )
    environments: dict[str, EnvironmentConfig] = Field(
        default_factory=dict,
        validation_alias=_env("OMNI_ENVIRONMENTS", "environments"),
        description="several environments (accounts, regions); see commands.environments",
    )
    terraform_outputs: str | None = Field(
        None, validation_alias=_env("OMNI_TERRAFORM_OUTPUTS", "terraform_outputs")
    )
    terraform_lock_table: str | None = Field(
        None, validation_alias=_env("OMNI_TERRAFORM_LOCK_TABLE", "terraform_lock_table")
    )
    database_url_secret: str | None = Field(
        None, validation_alias=_env("OMNI_DATABASE_URL_SECRET", "database_url_secret")
    )
    db_diag_secret: str | None = Field(
        None, validation_alias=_env("OMNI_DB_DIAG_SECRET", "db_diag_secret")
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"), validation_alias=_env("REDIS_URL", "redis_url")
    )

    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_api_url: str = Field(
        "https://slack.com/api/", validation_alias=_env("OMNI_SLACK_API_URL", "slack_api_url")
    )
    role_bindings: dict[str, list[str]] = Field(
        default_factory=dict, validation_alias=_env("OMNI_ROLE_BINDINGS", "role_bindings")
    )
    audit_channel: str | None = Field(
        None, validation_alias=_env("OMNI_AUDIT_CHANNEL", "audit_channel")
    )
    sns_cert_dir: Path | None = Field(
        None, validation_alias=_env("OMNI_SNS_CERT_DIR", "sns_cert_dir")
    )
    sns_max_age_s: int = Field(3600, validation_alias=_env("OMNI_SNS_MAX_AGE_S", "sns_max_age_s"))
    pagerduty_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("OMNI_PAGERDUTY_WEBHOOK_SECRET", "pagerduty_webhook_secret"),
    )

    # Alarm triage (issue: alarm posts get their triage in their own thread).
    alarm_sources: list[str] = Field(
        default_factory=list,
        validation_alias=_env("OMNI_ALARM_SOURCES", "alarm_sources"),
        description="app ids / bot ids whose posts are alarms; empty → any app or bot post",
    )
    alarm_routes: list[dict[str, Any]] = Field(
        default_factory=list, validation_alias=_env("OMNI_ALARM_ROUTES", "alarm_routes")
    )
    alarm_channel: str | None = Field(
        None,
        validation_alias=_env("OMNI_ALARM_CHANNEL", "alarm_channel"),
        description="where alarms received on /sns and /pagerduty are posted",
    )
    sns_topics: list[str] = Field(
        default_factory=list,
        validation_alias=_env("OMNI_SNS_TOPICS", "sns_topics"),
        description="topic ARNs whose SubscriptionConfirmation Omni confirms",
    )
    sns_verify_cert_dates: bool = Field(
        True, validation_alias=_env("OMNI_SNS_VERIFY_CERT_DATES", "sns_verify_cert_dates")
    )
    alarm_dedup_s: int = Field(600, validation_alias=_env("OMNI_ALARM_DEDUP_S", "alarm_dedup_s"))
    triage_window_s: int = Field(
        300, validation_alias=_env("OMNI_TRIAGE_WINDOW_S", "triage_window_s")
    )
    storm_threshold: int = Field(
        5,
        validation_alias=_env("OMNI_STORM_THRESHOLD", "storm_threshold"),
        description="more distinct alarms than this in a minute in one channel is a storm",
    )
    post_interval_ms: int = Field(
        1000, validation_alias=_env("OMNI_POST_INTERVAL_MS", "post_interval_ms")
    )

    # Graphs in threads.
    graphs: bool = Field(True, validation_alias=_env("OMNI_GRAPHS", "graphs"))
    graph_window_min: int = Field(
        60, ge=5, le=1440, validation_alias=_env("OMNI_GRAPH_WINDOW_MIN", "graph_window_min")
    )

    # Approve-to-fix.
    plan_ttl_s: int = Field(1800, validation_alias=_env("OMNI_PLAN_TTL_S", "plan_ttl_s"))
    dry_run: bool = Field(False, validation_alias=_env("OMNI_DRY_RUN", "dry_run"))
    fix_role_arn: str | None = Field(
        None, validation_alias=_env("OMNI_FIX_ROLE_ARN", "fix_role_arn")
    )
    fix_limit_per_hour: int = Field(
        3,
        validation_alias=_env("OMNI_FIX_LIMIT_PER_HOUR", "fix_limit_per_hour"),
        description="circuit breaker: at most this many fixes per target per hour",
    )

    # Per-resource name overrides (None → the guide's naming convention, see commands.names).
    ecs_cluster: str | None = Field(None, validation_alias=_env("OMNI_ECS_CLUSTER", "ecs_cluster"))
    ecs_service: str | None = Field(None, validation_alias=_env("OMNI_ECS_SERVICE", "ecs_service"))
    log_group: str | None = Field(None, validation_alias=_env("OMNI_LOG_GROUP", "log_group"))
    ecr_repository: str | None = Field(
        None, validation_alias=_env("OMNI_ECR_REPOSITORY", "ecr_repository")
    )
    task_execution_role: str | None = Field(
        None, validation_alias=_env("OMNI_TASK_EXECUTION_ROLE", "task_execution_role")
    )
    aurora_cluster: str | None = Field(
        None, validation_alias=_env("OMNI_AURORA_CLUSTER", "aurora_cluster")
    )
    waf_acl: str | None = Field(None, validation_alias=_env("OMNI_WAF_ACL", "waf_acl"))
    alarm_prefix: str | None = Field(
        None, validation_alias=_env("OMNI_ALARM_PREFIX", "alarm_prefix")
    )
    flow_logs_role: str | None = Field(
        None, validation_alias=_env("OMNI_FLOW_LOGS_ROLE", "flow_logs_role")
    )
    flow_logs_log_group_prefix: str | None = Field(
        None,
        validation_alias=_env("OMNI_FLOW_LOGS_LOG_GROUP_PREFIX", "flow_logs_log_group_prefix"),
    )

    # How runbooks run.
    runbook_deadline_s: float = Field(
        25.0, validation_alias=_env("OMNI_RUNBOOK_DEADLINE_S", "runbook_deadline_s")
    )
    aws_retry_mode: str = Field(
        "standard", validation_alias=_env("OMNI_AWS_RETRY_MODE", "aws_retry_mode")
    )
    aws_max_attempts: int = Field(
        5, validation_alias=_env("OMNI_AWS_MAX_ATTEMPTS", "aws_max_attempts")
    )
    aws_max_concurrency: int = Field(
        16, validation_alias=_env("OMNI_AWS_MAX_CONCURRENCY", "aws_max_concurrency")
    )
    job_timeout_s: int = Field(120, validation_alias=_env("OMNI_JOB_TIMEOUT_S", "job_timeout_s"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("OMNI_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ConfigError(f"OMNI_CONFIG={config_file} is not a readable file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @field_validator("role_bindings", mode="before")
    @classmethod
    def _parse_bindings(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError('OMNI_ROLE_BINDINGS must be a JSON object like {"operator": ["U1"]}')
        unknown = set(value) - {"viewer", "operator", "admin"}
        if unknown:
            raise ValueError(f"OMNI_ROLE_BINDINGS has unknown roles: {sorted(unknown)}")
        return value

    @field_validator("alarm_sources", "sns_topics", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("alarm_routes", mode="before")
    @classmethod
    def _routes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else []
        from .routing import Route

        for rule in value or []:
            Route.model_validate(rule)  # fail fast on a malformed rule
        return value

    @field_validator("aws_retry_mode")
    @classmethod
    def _retry_mode(cls, value: str) -> str:
        if value not in {"standard", "adaptive", "legacy"}:
            raise ValueError("OMNI_AWS_RETRY_MODE must be standard, adaptive or legacy")
        return value

    @model_validator(mode="after")
    def _environments(self) -> Settings:
        _environments.validate_environments(self)
        return self

    # -- environments ----------------------------------------------------------------------
    @property
    def default_env(self) -> str:
        return _environments.default_name(self)

    def environment_names(self) -> list[str]:
        return _environments.names(self)

    def for_environment(self, name: str | None = None) -> Settings:
        """These settings as seen by one environment (raises ``UnknownEnvironment``)."""
        return _environments.resolve(self, name)

    # -- derived values -------------------------------------------------------------------
    @property
    def lock_table(self) -> str:
        return self.terraform_lock_table or f"{self.project}-terraform-locks"

    @property
    def lock_table_explicit(self) -> bool:
        return self.terraform_lock_table is not None

    @property
    def db_url_secret_id(self) -> str:
        return self.database_url_secret or f"{self.project}/{self.environment}/database-url"

    def routes(self) -> list[Any]:
        from .routing import Route

        return [Route.model_validate(r) for r in self.alarm_routes]

    def require_slack(self) -> None:
        """Fail fast, naming the variable, when a Slack credential is missing or a placeholder."""
        for var, value in (
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
        ):
            _require_secret(var, value)
        if self.slack_app_token is not None:
            _require_secret("SLACK_APP_TOKEN", self.slack_app_token)


def _require_secret(var: str, value: SecretStr | None) -> None:
    if value is None or not value.get_secret_value().strip():
        raise ConfigError(f"{var} is not set: Omni needs it to talk to Slack")
    raw = value.get_secret_value().strip().lower()
    if any(p in raw for p in _PLACEHOLDERS):
        raise ConfigError(f"{var} looks like a placeholder; set the real value")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    try:
        return Settings()
    except ConfigError:
        raise
    except Exception as exc:  # pydantic.ValidationError and YAML errors
        raise ConfigError(f"invalid settings: {exc}") from exc
