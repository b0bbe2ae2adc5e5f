"""Terraform fixes: release a stale state lock (what ``terraform force-unlock`` does)."""

from __future__ import annotations

from ..errors import AwsCallError
from ..models import Risk
from ._registry import Call, FixContext, FixRefused, FixResult, Params, fix


class ReleaseLock(Params):
    TableName: str
    LockID: str
    Info: str


@fix(
    "terraform.release_state_lock",
    title="Release the stale Terraform state lock",
    risk=Risk.HIGH,
    calls=[
        Call(
            "dynamodb:DeleteItem",
            ("arn:aws:dynamodb:*:*:table/{project}-terraform-locks",),
            note="conditional on LockID and Info",
        )
    ],
    target="LockID",
    terraform="Nothing to change; equivalent to `terraform force-unlock LOCK_ID`.",
)
def release_state_lock(ctx: FixContext, p: ReleaseLock) -> FixResult:
    try:
        ctx.call(
            "dynamodb",
            "delete_item",
            TableName=p.TableName,
            Key={"LockID": {"S": p.LockID}},
            ConditionExpression="#info = :info",
            ExpressionAttributeNames={"#info": "Info"},
            ExpressionAttributeValues={":info": {"S": p.Info}},
        )
    except AwsCallError as exc:
        if exc.code == "ConditionalCheckFailedException":
            raise FixRefused(
                "the lock changed since it was shown (another terraform run holds it now): "
                "not released"
            ) from exc
        raise
    return FixResult(f"Lock {p.LockID} released", {"lock": "held"}, {"lock": "released"})
