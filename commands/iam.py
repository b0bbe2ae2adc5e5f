"""Least-privilege IAM policies, generated from the check and fix registries.

The diagnostics policy is what the runbooks actually call.  Every check is run against the
sandbox (the healthy stack and every scenario, so every branch that calls AWS is taken) with a
hook recording each API call; the recorded actions are data in the package
(``recorded_actions.json``), so ``omni iam-policy`` needs no AWS emulator.  ``omni iam-policy
--record`` (with the demo extra; :mod:`sandbox.iam_record`) records them again; a test records them and fails when the
data file has drifted from the code.  Calls that accept resource-level permissions are scoped
to the project's resources by ARN.  The fixes policy comes from the fix catalogue.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .remediations import CATALOGUE

RECORDED = Path(__file__).with_name("recorded_actions.json")

# Calls that AWS lets us scope, with the ARN pattern for the project's resources.
_SCOPED: dict[str, list[str]] = {
    "secretsmanager:GetSecretValue": ["arn:aws:secretsmanager:*:*:secret:{project}/*"],
    "dynamodb:Scan": ["arn:aws:dynamodb:*:*:table/{project}-terraform-locks"],
    "logs:FilterLogEvents": [
        "arn:aws:logs:*:*:log-group:/ecs/{project}-*",
        "arn:aws:logs:*:*:log-group:/ecs/{project}-*:*",
    ],
    "ecr:DescribeImages": ["arn:aws:ecr:*:*:repository/{project}-*"],
    "iam:ListRolePolicies": ["arn:aws:iam::*:role/{project}-*"],
    "iam:ListAttachedRolePolicies": ["arn:aws:iam::*:role/{project}-*"],
    "iam:GetRolePolicy": ["arn:aws:iam::*:role/{project}-*"],
    "iam:GetRole": ["arn:aws:iam::*:role/{project}-*"],
    "s3:GetObject": ["arn:aws:s3:::*/*.tfstate"],
}
_FIX_SCOPED: dict[str, list[str]] = {
    "rds:StartDBCluster": ["arn:aws:rds:*:*:cluster:{project}-*"],
    "rds:ModifyDBCluster": ["arn:aws:rds:*:*:cluster:{project}-*"],
    "ecs:UpdateService": ["arn:aws:ecs:*:*:service/{project}-*/{project}-*"],
    "elasticloadbalancing:ModifyLoadBalancerAttributes": [
        "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/{project}-*"
    ],
    "sns:Publish": ["arn:aws:sns:*:*:{project}-*"],
    "cloudwatch:EnableAlarmActions": ["arn:aws:cloudwatch:*:*:alarm:{project}-*"],
    "cloudwatch:DisableAlarmActions": ["arn:aws:cloudwatch:*:*:alarm:{project}-*"],
    "wafv2:UpdateIPSet": ["arn:aws:wafv2:*:*:regional/ipset/{project}-*/*"],
    "wafv2:UpdateWebACL": [
        "arn:aws:wafv2:*:*:regional/webacl/{project}-*/*",
        "arn:aws:wafv2:*:*:regional/managedruleset/*/*",
        "arn:aws:wafv2:*:*:regional/ipset/{project}-*/*",
    ],
    "dynamodb:DeleteItem": ["arn:aws:dynamodb:*:*:table/{project}-terraform-locks"],
    "iam:PassRole": ["arn:aws:iam::*:role/{project}-*"],
}
# The fix catalogue names botocore's service ids; IAM uses these prefixes.
_IAM_PREFIX = {"elbv2": "elasticloadbalancing"}
READ_ONLY = re.compile(r":(Describe|Get|List|Scan|Filter|Query)")


def fix_actions() -> set[str]:
    actions = set()
    for spec in CATALOGUE.values():
        for service, op in re.findall(r"([a-z0-9]+):([A-Z][A-Za-z]+)", spec.api):
            actions.add(f"{_IAM_PREFIX.get(service, service)}:{op}")
    if "ecs:RegisterTaskDefinition" in actions:
        actions |= {"iam:PassRole", "ecs:DescribeTaskDefinition"}
    return actions


def _statements(
    actions: set[str], scoped: dict[str, list[str]], project: str, sid: str
) -> list[dict[str, Any]]:
    statements = []
    anywhere = sorted(a for a in actions if a not in scoped)
    if anywhere:
        statements.append(
            {"Sid": f"{sid}Describe", "Effect": "Allow", "Action": anywhere, "Resource": "*"}
        )
    by_resource: dict[tuple[str, ...], list[str]] = {}
    for action in sorted(a for a in actions if a in scoped):
        resources = tuple(r.format(project=project) for r in scoped[action])
        by_resource.setdefault(resources, []).append(action)
    for i, (resources, grouped) in enumerate(sorted(by_resource.items())):
        statements.append(
            {
                "Sid": f"{sid}Scoped{i}",
                "Effect": "Allow",
                "Action": grouped,
                "Resource": list(resources),
            }
        )
    return statements


def diagnostics_policy(actions: set[str], project: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": _statements(actions, _SCOPED, project, "OmniDiagnostics"),
    }


def fixes_policy(project: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": _statements(fix_actions(), _FIX_SCOPED, project, "OmniFixes"),
    }


def policy_actions(policy: dict[str, Any]) -> set[str]:
    return {a for st in policy["Statement"] for a in st["Action"]}


def recorded_actions() -> set[str]:
    """The IAM actions the runbooks call, as last recorded over the sandbox."""
    return set(json.loads(RECORDED.read_text())["actions"])


def write_recorded(actions: set[str], path: Path = RECORDED) -> Path:
    doc = {
        "about": "IAM actions the runbooks call, recorded over every sandbox scenario by "
        "`omni iam-policy --record`; a test fails when this drifts from the code.",
        "actions": sorted(actions),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def write_policies(directory: str, project: str = "omnirapeutic") -> tuple[str, str]:
    os.makedirs(directory, exist_ok=True)
    diag = os.path.join(directory, "omni-diagnostics-policy.json")
    fixes = os.path.join(directory, "omni-fixes-policy.json")
    with open(diag, "w") as fh:
        json.dump(diagnostics_policy(recorded_actions(), project), fh, indent=2)
        fh.write("\n")
    with open(fixes, "w") as fh:
        json.dump(fixes_policy(project), fh, indent=2)
        fh.write("\n")
    return diag, fixes
