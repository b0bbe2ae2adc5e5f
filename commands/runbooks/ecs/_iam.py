"""Reading an IAM role's policies, inline and attached, and whether they allow an action."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...context import CheckContext


def allows(doc: dict[str, Any], action: str) -> bool:
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for st in statements:
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(
            a == "*"
            or a.lower() == action.lower()
            or (a.endswith("*") and action.lower().startswith(a[:-1].lower()))
            for a in actions
        ):
            if st.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


def _doc(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        from urllib.parse import unquote

        return dict(json.loads(unquote(value)))
    return dict(value or {})


def role_documents(ctx: CheckContext, role: str) -> dict[str, dict[str, Any]]:
    """Every policy document of an IAM role, inline and attached (raises AwsCallError)."""
    inline, attached = ctx.gather(
        lambda: ctx.aws.call("iam", "list_role_policies", RoleName=role).get("PolicyNames", []),
        lambda: ctx.aws.call("iam", "list_attached_role_policies", RoleName=role).get(
            "AttachedPolicies", []
        ),
    )

    def inline_doc(name: str) -> tuple[str, dict[str, Any]]:
        return name, _doc(
            ctx.aws.call("iam", "get_role_policy", RoleName=role, PolicyName=name)["PolicyDocument"]
        )

    def managed_doc(arn: str, name: str) -> tuple[str, dict[str, Any]]:
        meta = ctx.aws.call("iam", "get_policy", PolicyArn=arn)["Policy"]
        version = ctx.aws.call(
            "iam", "get_policy_version", PolicyArn=arn, VersionId=meta["DefaultVersionId"]
        )
        return name, _doc(version["PolicyVersion"]["Document"])

    return dict(
        ctx.gather(
            *[(lambda n=n: inline_doc(n)) for n in inline],
            *[(lambda a=p["PolicyArn"], n=p["PolicyName"]: managed_doc(a, n)) for p in attached],
        )
    )
