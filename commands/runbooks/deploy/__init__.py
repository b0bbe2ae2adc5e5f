"""Deployment Failures (guide §7): a stale Terraform state lock, a failing ECS rollout."""

from __future__ import annotations

from ...areas import Link, area
from ...evidence import from_revision
from ...models import Finding


def _not_about_infrastructure(cause: Finding, effect: Finding) -> bool:
    """A new revision's own errors, not the database's or the network's."""
    mentions = effect.evidence.get("mentions") or {}
    return not (mentions.get("database") or mentions.get("timeout"))


AREA = area(
    "deploy",
    title="Deployments (Terraform lock, ECS rollout)",
    services=("ecs", "dynamodb", "s3"),
    links={
        # a revision whose own tasks crash or fail their health checks is the rollout's fault
        "deploy.ecs_rollout": (
            Link("", "ecs.stopped_tasks", from_revision),
            Link("", "ecs.container_errors", _not_about_infrastructure),
            "ecs.task_churn",
        ),
    },
    module=__name__,
    layer=2,
)
