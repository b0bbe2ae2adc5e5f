"""The IAM policies in deploy/iam cannot drift from the code: they are regenerated here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from commands.iam import (
    READ_ONLY,
    diagnostics_policy,
    fix_actions,
    fixes_policy,
    policy_actions,
    recorded_actions,
)
from sandbox.iam_record import record_runbook_calls

from .helpers import REPO, clean_env

POLICIES = REPO / "deploy" / "iam"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded() -> set[str]:
    return record_runbook_calls("omnirapeutic")


def _committed(name: str) -> dict:  # type: ignore[type-arg]
    return dict(json.loads((POLICIES / name).read_text()))


def test_recorded_actions_are_what_the_runbooks_call(recorded: set[str]) -> None:
    assert recorded_actions() == recorded, (
        "the runbooks' calls have drifted from commands/recorded_actions.json: run "
        "`omni iam-policy --record` and commit it with deploy/iam"
    )


def test_committed_policies_are_what_the_code_generates() -> None:
    hint = "the policies have drifted from the code: run `omni iam-policy` and commit deploy/iam"
    assert _committed("omni-diagnostics-policy.json") == diagnostics_policy(
        recorded_actions(), "omnirapeutic"
    ), hint
    assert _committed("omni-fixes-policy.json") == fixes_policy("omnirapeutic"), hint


def test_every_runbook_call_is_allowed_and_read_only(recorded: set[str]) -> None:
    allowed = policy_actions(_committed("omni-diagnostics-policy.json"))
    assert recorded <= allowed, recorded - allowed
    assert {
        "rds:DescribeDBClusters",
        "cloudwatch:GetMetricStatistics",
        "secretsmanager:GetSecretValue",
    } <= allowed
    assert all(READ_ONLY.search(action) for action in allowed), [
        a for a in allowed if not READ_ONLY.search(a)
    ]


def test_no_fix_call_is_in_the_diagnostics_policy() -> None:
    diagnostics = policy_actions(_committed("omni-diagnostics-policy.json"))
    fixes = fix_actions()
    assert {
        "rds:StartDBCluster",
        "ec2:AuthorizeSecurityGroupIngress",
        "dynamodb:DeleteItem",
        "wafv2:UpdateWebACL",
    } <= fixes
    writes = {a for a in fixes if not READ_ONLY.search(a)}
    assert not (diagnostics & writes), diagnostics & writes
    # the fixes role reads what it verifies with, and nothing else it does not need
    assert {"rds:DescribeDBClusters", "ecs:DescribeServices"} <= fixes - writes


def test_scoped_to_the_project_where_aws_allows() -> None:
    statements = _committed("omni-diagnostics-policy.json")["Statement"]
    secret = next(st for st in statements if "secretsmanager:GetSecretValue" in st["Action"])
    assert secret["Resource"] == ["arn:aws:secretsmanager:*:*:secret:omnirapeutic/*"]
    fix_statements = _committed("omni-fixes-policy.json")["Statement"]
    start = next(st for st in fix_statements if "rds:StartDBCluster" in st["Action"])
    assert start["Resource"] == ["arn:aws:rds:*:*:cluster:omnirapeutic-*"]


def test_a_log_group_outside_the_convention_is_readable(tmp_path: Path) -> None:
    """``OMNI_LOG_GROUP`` names a group the ``/ecs/<project>-*`` scope does not cover: the
    generated policy lets the role read it too, and nothing else changes."""
    env = clean_env(OMNI_LOG_GROUP="/platform/shop/web")
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "iam-policy", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    policy = json.loads((tmp_path / "omni-diagnostics-policy.json").read_text())
    logs = next(st for st in policy["Statement"] if "logs:FilterLogEvents" in st["Action"])
    assert logs["Resource"] == [
        "arn:aws:logs:*:*:log-group:/ecs/omnirapeutic-*",
        "arn:aws:logs:*:*:log-group:/ecs/omnirapeutic-*:*",
        "arn:aws:logs:*:*:log-group:/platform/shop/web",
        "arn:aws:logs:*:*:log-group:/platform/shop/web:*",
    ]
    assert policy_actions(policy) == policy_actions(_committed("omni-diagnostics-policy.json"))
