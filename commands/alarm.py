"""The alarm Omni read, whatever carried it (see :mod:`commands.sources` for the carriers).

Nothing that reads alarms raises on odd input: fields Omni cannot read are ``None``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Source = Literal["cloudwatch", "pagerduty", "slack"]

FIRING = {"ALARM", "TRIGGERED", "ACKNOWLEDGED"}
RECOVERED = {"OK", "RESOLVED"}


class Alarm(BaseModel):
    source: Source
    name: str | None = None
    state: str | None = None
    namespace: str | None = None
    metric: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    region: str | None = None
    account: str | None = None
    arn: str | None = None
    incident_id: str | None = None
    reason: str | None = None
    changed_at: str | None = None
    threshold: float | None = None
    statistic: str | None = None  # CloudWatch statistic of the alarm (Average, Sum, p99…)
    service: str | None = None  # PagerDuty service id
    service_name: str | None = None

    @property
    def identity(self) -> str | None:
        """What makes two posts the same alarm, however much each post carried.

        A PagerDuty incident is its id; a CloudWatch alarm is its name (names are unique in an
        account and region, and the triage scopes the key by environment).  It must not depend
        on what enrichment later adds (an ARN, a metric), or a recovery would not find its thread.
        """
        if self.incident_id:
            return f"pagerduty:{self.incident_id}"
        if self.name:
            return f"alarm:{self.name}"
        return None

    @property
    def firing(self) -> bool:
        return (self.state or "") in FIRING

    @property
    def recovered(self) -> bool:
        return (self.state or "") in RECOVERED

    def explain(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "namespace": self.namespace,
            "metric": self.metric,
            "dimensions": self.dimensions or None,
            "region": self.region,
            "account": self.account,
        }
