from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

from commands.errors import ConfigError
from commands.names import Names
from commands.settings import Settings, get_settings

from .helpers import REPO, clean_env


def test_defaults_follow_design() -> None:
    s = Settings()
    assert s.project == "omnirapeutic"
    assert s.environment == "production"
    assert s.region == "us-east-1"
    assert s.redis_url.get_secret_value() == "redis://localhost:6379/0"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.lock_table == "omnirapeutic-terraform-locks"
    assert s.db_url_secret_id == "omnirapeutic/production/database-url"
    assert s.sns_max_age_s == 3600
    assert s.role_bindings == {}


def test_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("OMNI_PROJECT", "acme")
    monkeypatch.setenv("OMNI_ENVIRONMENT", "staging")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("OMNI_ROLE_BINDINGS", '{"operator": ["U1", "S2"], "admin": ["W3"]}')
    monkeypatch.setenv("OMNI_AURORA_CLUSTER", "legacy-db")
    s = Settings()
    assert (s.project, s.environment, s.region) == ("acme", "staging", "eu-west-1")
    assert s.role_bindings == {"operator": ["U1", "S2"], "admin": ["W3"]}
    assert s.db_url_secret_id == "acme/staging/database-url"
    names = Names.from_settings(s)
    assert names.aurora_cluster == "legacy-db"
    assert names.ecs_cluster == "acme-staging"
    assert names.ecs_service == "acme-staging-api"
    assert names.log_group == "/ecs/acme-staging/api"
    assert names.task_execution_role == "acme-staging-ecs-task-execution-role"
    assert names.waf_acl == "acme-staging-waf"
    assert names.flow_logs_log_group_prefix == "/aws/vpc/acme"


def test_aws_region_wins_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert Settings().region == "ap-south-1"


def test_yaml_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "omni.yaml"
    cfg.write_text("project: widgets\nrunbook_deadline_s: 9\n")
    monkeypatch.setenv("OMNI_CONFIG", str(cfg))
    s = Settings()
    assert s.project == "widgets" and s.runbook_deadline_s == 9
    monkeypatch.setenv("OMNI_PROJECT", "from-env")
    assert Settings().project == "from-env"  # env wins over the file


def test_bad_role_bindings_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_ROLE_BINDINGS", '{"superuser": ["U1"]}')
    with pytest.raises(ConfigError, match="unknown roles"):
        get_settings()


@pytest.mark.parametrize(
    ("token", "secret", "named"),
    [
        (None, "abc123", "SLACK_BOT_TOKEN"),
        ("xoxb-1-real", None, "SLACK_SIGNING_SECRET"),
        ("xoxb-your-token-here", "abc123", "SLACK_BOT_TOKEN"),
        ("xoxb-1-real", "changeme", "SLACK_SIGNING_SECRET"),
    ],
)
def test_require_slack_names_the_variable(
    token: str | None, secret: str | None, named: str
) -> None:
    s = Settings(
        slack_bot_token=SecretStr(token) if token else None,
        slack_signing_secret=SecretStr(secret) if secret else None,
    )
    with pytest.raises(ConfigError, match=named):
        s.require_slack()


def test_secrets_are_not_printed() -> None:
    s = Settings(
        slack_bot_token=SecretStr("xoxb-very-secret"), slack_signing_secret=SecretStr("sig-secret")
    )
    assert "xoxb-very-secret" not in repr(s) and "sig-secret" not in str(s.model_dump())


@pytest.mark.parametrize("missing", ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"])
def test_serve_stops_at_start_naming_the_variable(missing: str) -> None:
    env = clean_env(SLACK_BOT_TOKEN="xoxb-1-2-abc", SLACK_SIGNING_SECRET="0123abcd")
    del env[missing]
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "serve", "--port", "1"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3
    assert missing in out.stderr


def test_diagnose_needs_no_slack_settings() -> None:
    # Unknown area is a usage error, decided before any Slack or AWS setting is looked at.
    env = clean_env()
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "diagnose", "nope"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "SLACK" not in out.stderr
