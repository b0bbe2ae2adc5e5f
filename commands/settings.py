"""One typed ``Settings`` for every Omni process (DESIGN.md §3).

Every setting is a field here, read from the environment as ``OMNI_<FIELD>`` (upper case) and,
when ``OMNI_CONFIG`` names a YAML file, from that file by the lower-case field name
(environment variables win).  The few variables that are not Omni's own keep their usual names
(``AWS_REGION``/``AWS_DEFAULT_REGION``, ``REDIS_URL``, ``SLACK_*``, ``PORT``).  Secrets are
``SecretStr`` and are never printed; processes that need Slack call :meth:`require_slack`,
which fails fast naming the variable.  :func:`get_settings` reads them once per process.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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


def _alias(default: Any, *names: str) -> Any:
    """A field read from variables that are not ``OMNI_``-prefixed (and by name in YAML)."""
    return Field(default, validation_alias=AliasChoices(*names))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNI_", extra="ignore", populate_by_name=True, validate_default=True
    )

    # -- where: project, environments, AWS -------------------------------------------------
    project: str = "omnirapeutic"
    environment: str = "production"
    region: str = Field(
        "us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "region")
    )
    account_id: str | None = None
    role_arn: str | None = Field(
        None, description="role assumed for checks (None: own credentials)"
    )
    default_environment: str | None = None
    environments: dict[str, EnvironmentConfig] = Field(
        default_factory=dict, description="several environments; see commands.environments"
    )
    terraform_outputs: str | None = None
    terraform_lock_table: str | None = None
    terraform_state: str | None = Field(
        None,
        description="s3://bucket/key of this environment's Terraform state (its lock is judged "
        "alone); default: OMNI_TERRAFORM_OUTPUTS when that is an s3:// state",
    )
    terraform_lock_stale_min: int = Field(
        120,
        ge=5,
        description="a lock older than this is stale (a long apply holds one for tens of minutes)",
    )
    database_url_secret: str | None = None
    db_diag_secret: str | None = None
    slow_query_s: float = Field(30.0, gt=0)
    redis_url: SecretStr = Field(
        SecretStr("redis://localhost:6379/0"),
        validation_alias=AliasChoices("REDIS_URL", "redis_url"),
    )

    # -- Slack -------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = _alias(None, "SLACK_BOT_TOKEN", "slack_bot_token")
    slack_signing_secret: SecretStr | None = _alias(
        None, "SLACK_SIGNING_SECRET", "slack_signing_secret"
    )
    slack_app_token: SecretStr | None = _alias(None, "SLACK_APP_TOKEN", "slack_app_token")
    slack_api_url: str = "https://slack.com/api/"
    role_bindings: dict[str, list[str]] = Field(default_factory=dict)
    audit_channel: str | None = None
    audit_retention_days: int = Field(
        365, ge=1, description="audit records older than this are trimmed"
    )
    command_rate_per_min: float = Field(
        6.0, ge=0, description="/omni commands a user may send per minute (token bucket; 0: off)"
    )
    command_burst: int = Field(10, ge=1)

    # -- alarms received over HTTP -----------------------------------------------------------
    sns_cert_dir: Path | None = None
    sns_max_age_s: int = 3600
    sns_topics: list[str] = Field(
        default_factory=list, description="the only SNS topics /sns accepts (every message type)"
    )
    sns_verify_cert_dates: bool = True
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_max_age_s: int = Field(3600, ge=0, description="refuse older events; 0: off")

    # -- alarm triage ------------------------------------------------------------------------
    alarm_sources: list[str] = Field(
        default_factory=list,
        description="app ids / bot ids whose posts are alarms; empty → any app or bot post",
    )
    alarm_routes: list[dict[str, Any]] = Field(default_factory=list)
    alarm_channel: str | None = Field(
        None, description="where alarms received on /sns and /pagerduty are posted"
    )
    alarm_dedup_s: int = 600
    triage_window_s: int = 300
    storm_threshold: int = Field(
        5, description="more distinct alarms than this in a minute in one channel is a storm"
    )
    post_interval_ms: int = 1000
    changes_window_min: int = Field(
        120, ge=5, le=90 * 24 * 60, description="how far back triage reads the account's writes"
    )

    # -- graphs ------------------------------------------------------------------------------
    graphs: bool = True
    graph_window_min: int = Field(60, ge=5, le=1440)

    # -- approve-to-fix ----------------------------------------------------------------------
    plan_ttl_s: int = 1800
    plan_key: SecretStr | None = Field(
        None, description="signs plans and button values (default: derived from the bot token)"
    )
    dry_run: bool = False
    fix_role_arn: str | None = None
    fix_limit_per_hour: int = Field(
        3, description="circuit breaker: at most this many fixes per target per hour"
    )

    # -- per-resource name overrides (None → the guide's naming convention) ------------------
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

    # -- how runbooks and processes run ------------------------------------------------------
    runbook_deadline_s: float = 25.0
    aws_retry_mode: str = "standard"
    aws_max_attempts: int = 5
    aws_max_concurrency: int = 16
    job_timeout_s: int = 120
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Omni's own loggers (libraries stay at info)"
    )
    host: str = "0.0.0.0"
    port: int = _alias(3000, "PORT", "port")
    http_workers: int = Field(2, ge=1)
    http_threads: int = Field(16, ge=1)
    health_port: int = Field(9000, ge=0, description="the worker's /healthz and /metrics; 0: off")

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

        for rule in value or []:  # fail fast on a malformed rule
            if not Route.model_validate(rule).runbooks:
                raise ValueError(f"alarm route {rule} names no runbooks")
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
    def state_location(self) -> str | None:
        """``s3://bucket/key`` of this environment's Terraform state, when known."""
        if self.terraform_state:
            return self.terraform_state
        outputs = self.terraform_outputs or ""
        return outputs if outputs.startswith("s3://") else None

    @property
    def db_url_secret_id(self) -> str:
        return self.database_url_secret or f"{self.project}/{self.environment}/database-url"

    @property
    def default_alarm_prefix(self) -> str:
        return self.alarm_prefix or f"{self.project}-{self.environment}-"

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
