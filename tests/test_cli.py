"""``omni diagnose`` and ``omni demo`` as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from sandbox import Stack, apply_scenario

from .e2e import aws_env
from .helpers import REPO, clean_env

pytestmark = pytest.mark.slow


def _omni(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_diagnose_db_json_on_a_broken_stack(served_stack: Stack) -> None:
    apply_scenario("aurora-stopped", served_stack)
    out = _omni("diagnose", "db", "--format", "json", env=clean_env(**aws_env(served_stack)))
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    # the contract's keys, then the analysis across layers (additive keys)
    assert set(report) == {
        "runbook",
        "environment",
        "region",
        "duration_ms",
        "findings",
        "summary",
    } | {"followed", "root_cause", "other_causes", "upstream"}
    assert report["root_cause"]["check"] == "db.cluster_status" and report["followed"] is False
    assert (report["runbook"], report["environment"], report["region"]) == (
        "db",
        "production",
        "us-east-1",
    )
    status = next(f for f in report["findings"] if f["check"] == "db.cluster_status")
    assert status["status"] == "fail" and status["evidence"]["Status"] == "stopped"
    [fix] = status["remediations"]
    assert {k: fix[k] for k in ("id", "title", "risk", "params", "target", "role")} == {
        "id": "rds.start_cluster",
        "title": "Start the Aurora cluster",
        "risk": "low",
        "params": {"DBClusterIdentifier": "omnirapeutic-production"},
        "target": "omnirapeutic-production",
        "role": "operator",
    }
    assert fix["call"] == 'rds:StartDBCluster {"DBClusterIdentifier": "omnirapeutic-production"}'
    assert "terraform" in fix and "caveat" in fix


def test_diagnose_db_text_on_a_healthy_stack(served_stack: Stack) -> None:
    out = _omni("diagnose", "db", env=clean_env(**aws_env(served_stack)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Aurora cluster and its 2 instance(s) are available" in out.stdout
    assert "6 db checks passed; 2 not configured" in out.stdout  # skipped is not passed
    assert "\033[" not in out.stdout  # no colour when not a TTY


def test_diagnose_all_leads_with_the_root_cause(served_stack: Stack) -> None:
    apply_scenario("outage-db-down", served_stack)
    out = _omni("diagnose", "all", "--format", "json", env=clean_env(**aws_env(served_stack)))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert sorted(r["runbook"] for r in doc["reports"]) == [
        "alarms",
        "alb",
        "changes",
        "db",
        "deploy",
        "ecs",
        "network",
        "perf",
        "waf",
    ]
    assert doc["root_cause"]["check"] == "db.cluster_status"
    text = _omni("diagnose", "all", env=clean_env(**aws_env(served_stack))).stdout
    assert text.startswith("Root cause: Aurora cluster is stopped (db.cluster_status)")


def test_diagnose_all_healthy_exits_0(served_stack: Stack) -> None:
    out = _omni("diagnose", "all", "--format", "json", env=clean_env(**aws_env(served_stack)))
    assert out.returncode == 0, out.stdout[-2000:]
    assert json.loads(out.stdout)["root_cause"] is None


def test_diagnose_cannot_run_without_aws() -> None:
    env = clean_env(
        AWS_ENDPOINT_URL="http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        OMNI_AWS_MAX_ATTEMPTS="1",
    )
    out = _omni("diagnose", "db", env=env)
    assert out.returncode == 3
    assert "could run" in out.stderr or "could not" in out.stderr


def test_usage_errors_exit_2() -> None:
    assert _omni("diagnose", "kafka", env=clean_env()).returncode == 2
    assert _omni("diagnose", env=clean_env()).returncode == 2


def test_demo_runs_the_loop() -> None:
    """alarm → triage → approval → fix → verify, on the default scenario (Aurora stopped, seen
    by the 5XX alarm at the load balancer: the verdict names the database, three layers down)."""
    out = _omni("demo", env=clean_env())
    assert out.returncode == 0, out.stderr
    text = out.stdout
    steps = [
        "CloudWatch Alarm | omnirapeutic-production-alb-elb-5xx-high",
        "*Root cause:* Aurora cluster is stopped",
        "Triage of",
        "rds:StartDBCluster",
        "@oncall clicks [ Fix: Start the Aurora cluster ]",
        "approved `rds.start_cluster`",
        '`Status`: "stopped" → "available"',
        "Verification: `db.cluster_status` is now *ok*",
    ]
    at = 0
    for step in steps:  # each step appears, after the one before it
        at = text.index(step, at)
    assert "Traceback" not in out.stderr
    # the alarm post is now, as Slack would date it: the timeline's thread is today's incident
    opened = re.search(r"thread of (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", text)
    assert opened, text
    when = datetime.strptime(opened.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - when).total_seconds()) < 600
    slash = _omni("demo", "--scenario", "deploy-state-lock", env=clean_env())
    assert slash.returncode == 0, slash.stderr
    assert "@oncall: /omni diagnose deploy" in slash.stdout and "@teammate clicks" in slash.stdout
    assert "Verification: `deploy.state_lock` is now *ok*" in slash.stdout
    listing = _omni("demo", "--list", env=clean_env())
    assert "aurora-stopped" in listing.stdout and "healthy" in listing.stdout
