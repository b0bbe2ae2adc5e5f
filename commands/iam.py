"""Least-privilege IAM policies, generated from the check and fix registries.

The diagnostics policy is what the runbooks actually call.  Every check is run against the
sandbox (the healthy stack and every scenario, so every branch that calls AWS is taken) with a
hook recording each API call; the recorded actions are data in the package
(``recorded_actions.json``), so ``omni iam-policy`` needs no AWS emulator.  ``omni iam-policy
--record`` (with the demo extra; :mod:`sandbox.iam_record`) records them again; a test records them and fails when the
data file has drifted from the code.  Calls that accept resource-level permissions are scoped
to the project's resources by ARN.  The fixes policy comes from the fixes' declarations
(their calls, with the resources and conditions each declares, and the reads they verify with).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

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
    # the Terraform state: the configured objects (``{state}``), else the project's buckets
    "s3:GetObject": ["arn:aws:s3:::{state}"],
}
DEFAULT_STATE = "{project}-*/*.tfstate"
READ_ONLY = re.compile(r":(Describe|Get|List|Scan|Filter|Query|Lookup)")


def fix_grants() -> dict[str, tuple[tuple[str, ...], str]]:
    """Every action the fixes take or read with → (resources, condition as JSON), from their
    declarations; an action declared by several fixes gets the union of their resources."""
    from .fixes import catalogue

    grants: dict[str, tuple[tuple[str, ...], str]] = {}
    for spec in catalogue().values():
        for call in spec.calls:
            resources, condition = grants.get(call.action, ((), ""))
            merged = tuple(dict.fromkeys((*resources, *call.resources)))
            if "*" in merged:
                merged = ("*",)
            grants[call.action] = (
                merged,
                condition or json.dumps(call.condition or {}, sort_keys=True),
            )
        for action in spec.reads:
            grants.setdefault(action, (("*",), "{}"))
    return grants


def fix_actions() -> set[str]:
    return set(fix_grants())


def _statements(
    actions: set[str],
    scoped: dict[str, list[str]],
    project: str,
    sid: str,
    states: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    statements = []
    anywhere = sorted(a for a in actions if a not in scoped)
    if anywhere:
        statements.append(
            {"Sid": f"{sid}Describe", "Effect": "Allow", "Action": anywhere, "Resource": "*"}
        )
    by_resource: dict[tuple[str, ...], list[str]] = {}
    for action in sorted(a for a in actions if a in scoped):
        resources = tuple(
            r.format(project=project, state=state)
            for r in scoped[action]
            for state in (states or (DEFAULT_STATE.format(project=project),))
        )
        resources = tuple(dict.fromkeys(resources))
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


def diagnostics_policy(
    actions: set[str],
    project: str,
    states: tuple[str, ...] = (),
    log_groups: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``states``: the Terraform state objects (``s3://bucket/key``) Omni may read; none known:
    the project's buckets' ``*.tfstate``.  ``log_groups``: groups configured outside the
    ``/ecs/<project>-*`` convention (``OMNI_LOG_GROUP``), readable as well."""
    objects = tuple(sorted({u.removeprefix("s3://") for u in states if u.startswith("s3://")}))
    scoped = dict(_SCOPED)
    for group in sorted(set(log_groups)):
        scoped["logs:FilterLogEvents"] = [
            *scoped["logs:FilterLogEvents"],
            f"arn:aws:logs:*:*:log-group:{group}",
            f"arn:aws:logs:*:*:log-group:{group}:*",
        ]
    return {
        "Version": "2012-10-17",
        "Statement": _statements(actions, scoped, project, "OmniDiagnostics", objects),
    }


def fixes_policy(project: str) -> dict[str, Any]:
    grants = fix_grants()
    statements = []
    anywhere = sorted(a for a, (res, cond) in grants.items() if res == ("*",) and cond == "{}")
    if anywhere:
        statements.append(
            {"Sid": "OmniFixesAnywhere", "Effect": "Allow", "Action": anywhere, "Resource": "*"}
        )
    grouped: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for action, (resources, condition) in sorted(grants.items()):
        if action not in anywhere:
            grouped.setdefault((resources, condition), []).append(action)
    for i, ((resources, condition), actions) in enumerate(sorted(grouped.items())):
        statement: dict[str, Any] = {
            "Sid": f"OmniFixesScoped{i}",
            "Effect": "Allow",
            "Action": actions,
            "Resource": [r.format(project=project) for r in resources],
        }
        if condition != "{}":
            statement["Condition"] = json.loads(condition.replace("{project}", project))
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


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


def write_policies(
    directory: str,
    project: str = "omnirapeutic",
    states: tuple[str, ...] = (),
    log_groups: tuple[str, ...] = (),
) -> tuple[str, str]:
    os.makedirs(directory, exist_ok=True)
    diag = os.path.join(directory, "omni-diagnostics-policy.json")
    fixes = os.path.join(directory, "omni-fixes-policy.json")
    with open(diag, "w") as fh:
        json.dump(diagnostics_policy(recorded_actions(), project, states, log_groups), fh, indent=2)
        fh.write("\n")
    with open(fixes, "w") as fh:
        json.dump(fixes_policy(project), fh, indent=2)
        fh.write("\n")
    return diag, fixes
