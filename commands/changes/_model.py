"""A change: one write to the account, who made it, and what it touched."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Change(BaseModel):
    id: str  # CloudTrail EventId, or "ecs-deployment:<id>", "rds-event:<time>"
    at: datetime
    name: str  # EventName ("RevokeSecurityGroupIngress"), or "ECS deployment", "RDS event"
    source: str  # "cloudtrail" | "ecs" | "rds"
    who: str | None = None  # "user/alice", "role/ci (session deploy-42)", None when unknown
    resources: list[str] = Field(default_factory=list)  # ids and names it touched
    request: dict[str, Any] = Field(default_factory=dict)  # requestParameters: the exact call
    response: dict[str, Any] = Field(default_factory=dict)
    message: str = ""  # an ECS or RDS event's own words


class Reading(BaseModel):
    """The run's changes, and what could not be read (the ``changes.recent`` finding says it)."""

    changes: list[Change] = Field(default_factory=list)
    pages: int = 0
    truncated: bool = False
    errors: list[str] = Field(default_factory=list)  # "cloudtrail: AccessDenied …"
    throttled: bool = False
    denied: bool = False
