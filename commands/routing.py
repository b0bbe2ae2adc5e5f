"""Which runbooks an alarm calls for: a rule table, the guide's defaults after any of yours.

A rule matches on any of ``namespace``, ``metric`` (exact) and ``name`` (a case-insensitive
regular expression searched in the alarm name); all the fields it names must match.  Add rules
with ``OMNI_ALARM_ROUTES`` (JSON list) or ``alarm_routes`` in the ``OMNI_CONFIG`` file, e.g.
``[{"name": "checkout-.*latency", "runbooks": ["perf", "db"]}]``; yours are tried first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

from .alarm import Alarm


class Route(BaseModel):
    runbooks: list[str]
    namespace: str | None = None
    metric: str | None = None
    name: str | None = Field(None, description="regex searched in the alarm name")

    def matches(self, alarm: Alarm) -> bool:
        if not (self.namespace or self.metric or self.name):
            return False
        if self.namespace and (alarm.namespace or "").lower() != self.namespace.lower():
            return False
        if self.metric and (alarm.metric or "").lower() != self.metric.lower():
            return False
        return not (self.name and not re.search(self.name, alarm.name or "", re.I))


DEFAULT_ROUTES: list[Route] = [
    Route(namespace="AWS/ECS", metric="CPUUtilization", runbooks=["perf", "ecs"]),
    Route(namespace="AWS/ECS", metric="MemoryUtilization", runbooks=["perf", "ecs"]),
    Route(metric="HTTPCode_Target_5XX_Count", runbooks=["alb", "ecs"]),
    Route(metric="HTTPCode_ELB_5XX_Count", runbooks=["alb", "ecs"]),
    Route(metric="UnHealthyHostCount", runbooks=["alb", "ecs"]),
    Route(metric="TargetResponseTime", runbooks=["perf"]),
    Route(namespace="AWS/RDS", metric="CPUUtilization", runbooks=["db"]),
    Route(namespace="AWS/RDS", metric="ServerlessDatabaseCapacity", runbooks=["db"]),
    Route(namespace="AWS/RDS", metric="ACUUtilization", runbooks=["db"]),
    Route(namespace="AWS/RDS", metric="DatabaseConnections", runbooks=["db"]),
    Route(namespace="AWS/WAFV2", metric="BlockedRequests", runbooks=["waf"]),
    Route(namespace="AWS/NATGateway", runbooks=["network"]),
    # By name, for posts that carry no metric (the guide's alarm names, and common variants).
    Route(name=r"(ecs|task|container|service).*(cpu|mem)", runbooks=["perf", "ecs"]),
    Route(name=r"(alb|elb|lb|api|target).*5\d\d|5xx", runbooks=["alb", "ecs"]),
    Route(name=r"unhealthy|healthy.?host", runbooks=["alb", "ecs"]),
    Route(name=r"response.?time|latency", runbooks=["perf"]),
    Route(name=r"(rds|aurora|db|database).*(cpu|capacity|acu|conn)", runbooks=["db"]),
    Route(name=r"waf|blocked", runbooks=["waf"]),
    Route(name=r"\bnat\b|nat-gateway|natgateway", runbooks=["network"]),
]


def route(alarm: Alarm, rules: Iterable[Route] = ()) -> list[str]:
    """The runbooks for an alarm (first matching rule wins); [] when no rule matches."""
    for rule in [*rules, *DEFAULT_ROUTES]:
        if rule.matches(alarm):
            return list(dict.fromkeys(rule.runbooks))
    return []
