"""Several environments in their own AWS accounts and regions (moto switches account when a
role in another account is assumed): config, choice of environment, credentials, preflight."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.queue import DIAGNOSTICS_QUEUE, Enqueuer
from bot.server import create_web_app
from bot.slack_client import make_web_client
from bot.triage import Triage
from commands import environments, preflight
from commands.alarm import Alarm
from commands.aws import ClientPool
from commands.cli import main
from commands.credentials import Sessions
from commands.errors import ConfigError, UnknownEnvironment
from commands.names import Names
from commands.settings import Settings, get_settings
from commands.sources.pagerduty import from_webhook as from_pagerduty_webhook
from sandbox import Stack, apply_scenario, seed
from sandbox.fakeslack import FakeSlack
from sandbox.requests import signed_headers, slash_command_body
from workers import jobs
from workers.runtime import Runtime, set_runtime

PROD_ACCOUNT, STAGING_ACCOUNT = "111111111111", "222222222222"
PROD_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/omni-diagnostics"
STAGING_ROLE = f"arn:aws:iam::{STAGING_ACCOUNT}:role/omni-diagnostics"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "default_environment": "production",
        "environments": {
            "production": {
                "region": "us-east-1",
                "account_id": PROD_ACCOUNT,
                "role_arn": PROD_ROLE,
                "fix_role_arn": f"arn:aws:iam::{PROD_ACCOUNT}:role/omni-fixes",
                "project": "omnirapeutic",
                "terraform_outputs": str(tmp_path / "production.json"),
                "channels": ["C0PRODINC"],
                "pagerduty_services": ["PPROD01"],
            },
            "staging": {
                "region": "eu-west-1",
                "account_id": STAGING_ACCOUNT,
                "role_arn": STAGING_ROLE,
                "project": "omnirapeutic",
                "terraform_outputs": str(tmp_path / "staging.json"),
                "channels": ["C0STAGINC"],
            },
        },
        **extra,
    }


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "omni.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OMNI_CONFIG", str(_write(tmp_path, _config(tmp_path))))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def two_stacks(aws: Any, config: Settings, tmp_path: Path) -> dict[str, Stack]:
    """The guide's stack twice: production in 111… (us-east-1), staging in 222… (eu-west-1),
    each seeded through its own assumed role, with its Terraform outputs in its own file."""
    sessions = Sessions(boto3.session.Session())
    stacks = {}
    for name in ("production", "staging"):
        env = config.for_environment(name)
        pool = ClientPool(sessions.for_role(env.role_arn, region=env.region), max_attempts=2)
        stack = seed(pool, Names.from_settings(env), env.region)
        (tmp_path / f"{name}.json").write_text(
            json.dumps({k: {"value": v} for k, v in stack.outputs.items()})
        )
        stacks[name] = stack
    return stacks


# -- the config file ----------------------------------------------------------------------------
def test_config_file_resolves_each_environment(config: Settings) -> None:
    assert config.environment_names() == ["production", "staging"]
    assert config.default_env == "production"
    staging = config.for_environment("staging")
    assert (staging.environment, staging.region, staging.account_id, staging.role_arn) == (
        "staging",
        "eu-west-1",
        STAGING_ACCOUNT,
        STAGING_ROLE,
    )
    assert staging.fix_role_arn is None  # production's fix role does not leak into staging
    assert Names.from_settings(staging).aurora_cluster == "omnirapeutic-staging"
    with pytest.raises(UnknownEnvironment, match="configured: production, staging"):
        config.for_environment("qa")


def test_per_environment_name_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _config(tmp_path)
    doc["environments"]["staging"]["aurora_cluster"] = "stg-db"
    monkeypatch.setenv("OMNI_CONFIG", str(_write(tmp_path, doc)))
    s = Settings()
    assert Names.from_settings(s.for_environment("staging")).aurora_cluster == "stg-db"
    assert Names.from_settings(s.for_environment("production")).aurora_cluster == (
        "omnirapeutic-production"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"default_environment": "qa"}, "default_environment 'qa' is not one of"),
        (
            {"environments.staging.channels": ["C0PRODINC"]},
            "C0PRODINC is bound to both production and staging",
        ),
        (
            {"environments.staging.role_arn": PROD_ROLE},
            "role_arn is in account 111111111111, but the environment's account_id is 222222222222",
        ),
        ({"environments.staging.account_id": "2222"}, "account_id must be 12 digits"),
        ({"environments.staging.region": "Ireland"}, "not an AWS region"),
        ({"environments.staging.colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_config_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], message: str
) -> None:
    doc = _config(tmp_path)
    for dotted, value in change.items():
        *path, key = dotted.split(".")
        target = doc
        for part in path:
            target = target[part]
        target[key] = value
    monkeypatch.setenv("OMNI_CONFIG", str(_write(tmp_path, doc)))
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=message):
        get_settings()


def test_env_vars_alone_still_describe_one_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_ENVIRONMENT", "prod")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    s = Settings()
    assert s.environment_names() == ["prod"] and s.for_environment() is s
    assert s.for_environment().region == "ap-southeast-2"


# -- choosing the environment ---------------------------------------------------------------
def test_command_environment_precedence(config: Settings) -> None:
    assert environments.choose(config, "staging", "C0PRODINC") == "staging"  # explicit wins
    assert environments.choose(config, None, "C0STAGINC") == "staging"  # channel binding
    assert environments.choose(config, None, "C0OTHER") == "production"  # default
    with pytest.raises(UnknownEnvironment):
        environments.choose(config, "qa", "C0STAGINC")


def _arn_alarm(account: str, region: str, name: str) -> Alarm:
    return Alarm(
        source="cloudwatch",
        name=name,
        state="ALARM",
        account=account,
        region=region,
        arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
        namespace="AWS/RDS",
        metric="CPUUtilization",
    )


def test_alarm_environment_from_its_arn(config: Settings) -> None:
    def where(account: str | None, region: str | None, name: str, channel: str | None) -> Any:
        return environments.for_alarm(
            config, account=account, region=region, alarm_name=name, channel=channel
        )

    # the ARN wins over the channel the alarm was posted in
    assert where(STAGING_ACCOUNT, "eu-west-1", "x-cpu", "C0PRODINC").name == "staging"
    assert where(PROD_ACCOUNT, "us-east-1", "x-cpu", "C0STAGINC").name == "production"
    unknown = where("333333333333", "us-east-1", "x-cpu", "C0PRODINC")
    assert unknown.name is None and "333333333333" in unknown.reason
    # no ARN: channel binding, then the alarm-name prefix, then the default
    assert where(None, None, "x-cpu", "C0STAGINC").name == "staging"
    assert where(None, None, "omnirapeutic-staging-db-cpu", "C0ELSE").name == "staging"
    assert where(None, None, "x-cpu", "C0ELSE").name == "production"


def test_same_account_two_regions_is_told_apart_by_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _config(tmp_path)
    doc["environments"]["staging"].update(
        account_id=PROD_ACCOUNT, role_arn=PROD_ROLE.replace("diagnostics", "stg")
    )
    monkeypatch.setenv("OMNI_CONFIG", str(_write(tmp_path, doc)))
    s = Settings()
    for region, expected in (("eu-west-1", "staging"), ("us-east-1", "production")):
        got = environments.for_alarm(
            s, account=PROD_ACCOUNT, region=region, alarm_name="a", channel=None
        )
        assert got.name == expected, got


def test_pagerduty_service_mapping(config: Settings) -> None:
    from tests.helpers import FIXTURES

    doc = json.loads((FIXTURES / _pd_fixture()).read_text())
    doc["event"]["data"]["service"]["id"] = "PPROD01"
    alarm = from_pagerduty_webhook(doc)
    got = environments.for_alarm(
        config,
        account=None,
        region=None,
        alarm_name="no-prefix",
        channel="C0STAGINC",
        pagerduty_services=(alarm.service, alarm.service_name),
    )
    assert (got.name, got.reason) == ("production", "PagerDuty service PPROD01")


def _pd_fixture() -> str:
    from tests.helpers import FIXTURES

    for path in sorted(FIXTURES.glob("pagerduty*.json")):
        doc = json.loads(path.read_text())
        if (doc.get("event") or {}).get("data", {}).get("service"):
            return path.name
    pytest.skip("no PagerDuty v3 fixture with a service")


# -- alarms and commands land on their environment --------------------------------------------
@pytest.fixture
def triage(config: Settings, fake_slack: FakeSlack, redis_url: str) -> Triage:
    s = config.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-t"),
            "slack_api_url": fake_slack.url,
            "redis_url": SecretStr(redis_url),
            "post_interval_ms": 10,
        }
    )
    redis = Redis.from_url(redis_url)
    return Triage(s, redis, Enqueuer(redis, s), make_web_client(s, redis=redis))


def _requests(redis_url: str) -> list[dict[str, Any]]:
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )
    return [j.kwargs["job"] for j in queue.jobs]


def test_alarm_from_each_account_is_triaged_on_its_own_environment(
    triage: Triage, fake_slack: FakeSlack, redis_url: str
) -> None:
    # both posted in the production channel: the ARN decides
    triage.handle(_arn_alarm(PROD_ACCOUNT, "us-east-1", "db-cpu"), "C0PRODINC", "1.1")
    triage.handle(_arn_alarm(STAGING_ACCOUNT, "eu-west-1", "db-cpu"), "C0PRODINC", "1.2")
    outcome = triage.handle(_arn_alarm("333333333333", "us-east-1", "db-cpu"), "C0PRODINC", "1.3")
    assert outcome.action == "unknown-account"
    assert [(r["environment"], r["thread_ts"]) for r in _requests(redis_url)] == [
        ("production", "1.1"),
        ("staging", "1.2"),
    ]
    [note] = [m for m in fake_slack.find("chat.postMessage") if m.thread_ts == "1.3"]
    assert "account 333333333333 (us-east-1) is not in any configured environment" in note.text
    assert "did not triage" in note.text


def test_slash_command_uses_the_channels_environment(
    config: Settings, fake_slack: FakeSlack, redis_url: str
) -> None:
    s = config.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test-123"),
            "slack_signing_secret": SecretStr(SECRET),
            "slack_api_url": fake_slack.url,
            "redis_url": SecretStr(redis_url),
        }
    )
    web = create_web_app(s)
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )

    def send(text: str, channel: str) -> Any:
        body = slash_command_body(
            text, channel=channel, response_url=fake_slack.url.replace("/api/", "/response/1")
        )
        with web.test_client() as c:
            return c.post("/slack/events", data=body, headers=signed_headers(SECRET, body))

    send("diagnose db", "C0STAGINC")
    send("diagnose db production", "C0STAGINC")
    send("diagnose db", "C0RANDOM")
    fake_slack.wait_for(lambda: queue.count == 3)
    got = sorted((j.kwargs["job"]["channel"], j.kwargs["job"]["environment"]) for j in queue.jobs)
    assert got == [
        ("C0RANDOM", "production"),  # unbound channel: the default
        ("C0STAGINC", "production"),  # explicit argument wins over the binding
        ("C0STAGINC", "staging"),  # the channel's binding
    ]
    unknown = send("diagnose db qa", "C0STAGINC")
    assert unknown.status_code == 200
    assert "No environment `qa`" in unknown.get_json()["text"]
    assert queue.count == 3


# -- runbooks in two accounts ----------------------------------------------------------------
@pytest.fixture
def runtime(config: Settings, fake_slack: FakeSlack) -> Iterator[Runtime]:
    s = config.model_copy(
        update={"slack_bot_token": SecretStr("xoxb-job"), "slack_api_url": fake_slack.url}
    )
    base = boto3.session.Session()
    assumed: list[str] = []
    base.events.register(
        "before-parameter-build.sts.AssumeRole",
        lambda params, **_: assumed.append(params["RoleArn"]),
    )
    rt = Runtime(settings=s, pool=ClientPool(base, max_attempts=2), slack=make_web_client(s))
    rt.assumed = assumed  # type: ignore[attr-defined]
    set_runtime(rt)
    yield rt
    set_runtime(None)


def test_each_diagnosis_sees_only_its_own_account(
    two_stacks: dict[str, Stack], runtime: Runtime, fake_slack: FakeSlack
) -> None:
    apply_scenario("aurora-stopped", two_stacks["production"])

    def diagnose(area: str, env: str, channel: str) -> tuple[str, dict[str, Any]]:
        root = str(runtime.slack.chat_postMessage(channel=channel, text="Diagnosing…")["ts"])
        request = {"area": area, "environment": env, "channel": channel, "thread_ts": root}
        return root, jobs.run_diagnosis(request)

    _, prod = diagnose("db", "production", "C0PRODINC")
    staging_root, staging = diagnose("db", "staging", "C0STAGINC")
    assert (prod["environment"], prod["region"]) == ("production", "us-east-1")
    assert (staging["environment"], staging["region"]) == ("staging", "eu-west-1")
    status = {r["check"]: r["status"] for r in prod["findings"]}
    assert status["db.cluster_status"] == "fail"  # production's cluster is stopped
    assert {r["check"]: r["status"] for r in staging["findings"]}["db.cluster_status"] == "ok"
    # each found its own cluster (omnirapeutic-<env> exists only in its own account and region)
    for report in (prod, staging):
        assert "error" not in {f["status"] for f in report["findings"]}, report
    replies = [
        json.dumps(m.body)
        for m in fake_slack.find("chat.postMessage")
        if m.thread_ts == staging_root
    ]
    assert any("*db* in *staging* (eu-west-1)" in body for body in replies), replies
    updates = [
        json.dumps(m.body)
        for m in fake_slack.find("chat.update")
        if m.body.get("ts") == staging_root
    ]
    assert any("in *staging* (eu-west-1)" in body for body in updates), updates
    # one role assumption per environment, reused by the next job
    diagnose("ecs", "staging", "C0STAGINC")
    assert sorted(runtime.assumed) == sorted([PROD_ROLE, STAGING_ROLE])  # type: ignore[attr-defined]


def test_assumed_credentials_are_refreshed_before_they_expire(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    import botocore.credentials

    base = boto3.session.Session()
    calls: list[str] = []
    base.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: calls.append(params["RoleArn"])
    )
    session = Sessions(base).for_role(STAGING_ROLE, region="eu-west-1")
    sts = session.client("sts", region_name="eu-west-1")
    assert sts.get_caller_identity()["Account"] == STAGING_ACCOUNT
    sts.get_caller_identity()
    assert calls == [STAGING_ROLE]  # cached
    creds = session.get_credentials()
    first_key = creds.get_frozen_credentials().access_key
    # 55 minutes later the hour-long credentials are 5 minutes from expiry: inside botocore's
    # mandatory refresh window, so the next call assumes the role again
    later = datetime.now(UTC) + timedelta(minutes=55)
    monkeypatch.setattr(botocore.credentials, "_local_now", lambda: later)
    creds._time_fetcher = lambda: later  # type: ignore[attr-defined]
    assert sts.get_caller_identity()["Account"] == STAGING_ACCOUNT
    assert calls == [STAGING_ROLE, STAGING_ROLE]
    assert creds.get_frozen_credentials().access_key != first_key


# -- omni config check ----------------------------------------------------------------------
def test_config_check_reports_every_environment(
    two_stacks: dict[str, Stack], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "production (default) — channels C0PRODINC" in out
    assert f"account {STAGING_ACCOUNT} as arn:aws:sts::{STAGING_ACCOUNT}:assumed-role/" in out
    for item in ("ECS cluster", "ECS service", "load balancer", "Aurora cluster", "log group"):
        assert out.count(f"ok    {item}") == 2, out
    assert "ready: 0 missing" in out


def test_config_check_fails_on_a_broken_role_and_a_missing_resource(
    two_stacks: dict[str, Stack], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = boto3.session.Session()

    def mark(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["deny"] = params.get("RoleArn") == STAGING_ROLE

    def deny(context: dict[str, Any], **_: Any) -> Any:
        """moto trusts every role: refuse staging's as AWS would with a broken trust policy."""
        if context.get("deny"):
            from tests.helpers import _Http

            return _Http(403), {
                "Error": {
                    "Code": "AccessDenied",
                    "Message": "not authorized to perform sts:AssumeRole",
                }
            }
        return None

    base.events.register("before-parameter-build.sts.AssumeRole", mark)
    base.events.register("before-call.sts.AssumeRole", deny)
    settings = get_settings()
    lines = preflight.run(settings, base)
    [broken] = [line for line in lines if line.environment == "staging"]
    assert broken.status == preflight.FAIL and broken.item == "role"
    assert broken.detail.startswith(f"cannot assume {STAGING_ROLE}: AccessDenied")
    assert all(
        line.status == "ok"
        for line in lines
        if line.item in {"role", "Aurora cluster"} and line.environment == "production"
    )

    # a resource that is not there: named, with where it was looked for, and exit 1
    doc = _config(tmp_path)
    doc["environments"]["staging"]["aurora_cluster"] = "no-such-db"
    monkeypatch.setenv("OMNI_CONFIG", str(_write(tmp_path, doc)))
    get_settings.cache_clear()
    lines = preflight.run(get_settings())
    [missing] = [line for line in lines if line.status == preflight.FAIL]
    assert (missing.environment, missing.item) == ("staging", "Aurora cluster")
    assert missing.detail == (
        f"Aurora cluster 'no-such-db' not found in region eu-west-1, account {STAGING_ACCOUNT}"
    )
    assert main(["config", "check"]) == 1


def test_a_fix_in_staging_runs_in_stagings_account_as_the_approver(
    two_stacks: dict[str, Stack], config: Settings, fake_slack: FakeSlack, redis_url: str
) -> None:
    """Production's stopped cluster stays stopped: staging's fix ran in 222… / eu-west-1, with
    staging's role (it has no fix role of its own), and production's fix role never came up."""
    from bot.plans import PlanStore, plan_key
    from commands.fixes import propose
    from workers import fixes as fix_jobs

    for stack in two_stacks.values():
        apply_scenario("aurora-stopped", stack)
    s = config.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-fix-env"),
            "slack_api_url": fake_slack.url,
            "redis_url": SecretStr(redis_url),
        }
    )
    base = boto3.session.Session()
    assumed: list[dict[str, Any]] = []
    base.events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.append(dict(params))
    )
    redis = Redis.from_url(redis_url)
    set_runtime(Runtime.with_redis(s, ClientPool(base, max_attempts=2), make_web_client(s), redis))
    try:
        store = PlanStore(redis, plan_key("xoxb-fix-env"), s.plan_ttl_s)
        staging = two_stacks["staging"].names.aurora_cluster
        plan = store.propose(
            propose("rds.start_cluster", DBClusterIdentifier=staging),
            check="db.cluster_status",
            finding="stopped",
            channel="C0STAGINC",
            thread_ts="3.1",
            environment="staging",
        )
        store.transition(plan.id, {"proposed"}, "approved", approvals=["U0OP"])
        result = fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0OP"})
    finally:
        set_runtime(None)
    assert result["ok"] and result["after"] == {"Status": "available"}
    assert "is now *ok*" in result["verification"]  # verified in staging too

    def status(name: str) -> str:
        env = config.for_environment(name)
        session = Sessions(boto3.session.Session()).for_role(env.role_arn, region=env.region)
        cluster = session.client("rds", region_name=env.region).describe_db_clusters(
            DBClusterIdentifier=two_stacks[name].names.aurora_cluster
        )["DBClusters"][0]
        return str(cluster["Status"])

    assert (status("staging"), status("production")) == ("available", "stopped")
    assert {a["RoleArn"] for a in assumed} == {STAGING_ROLE}
