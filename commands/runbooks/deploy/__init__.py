"""Deployment Failures (guide §7): a stale Terraform state lock, a failed ECS rollout."""

from __future__ import annotations

from ...areas import area

AREA = area(
    "deploy",
    title="Deployments (Terraform lock, ECS rollout)",
    services=("ecs", "dynamodb"),
    module=__name__,
)
