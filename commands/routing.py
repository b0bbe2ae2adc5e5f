"""Which runbooks an alarm calls for: a rule table, the areas' defaults after any of yours.

A rule matches on any of ``namespace``, ``metric`` (exact) and ``name`` (a case-insensitive
regular expression searched in the alarm name); all the fields it names must match.  Add rules
with ``OMNI_ALARM_ROUTES`` (JSON list) or ``alarm_routes`` in the ``OMNI_CONFIG`` file, e.g.
``[{"name": "checkout-.*latency", "runbooks": ["perf", "db"]}]``; yours are tried first,
then each area's own routes (declared with the area, :mod:`commands.areas`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

from .alarm import Alarm


class Route(BaseModel):
    runbooks: list[str] = Field(default_factory=list)
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


def route(alarm: Alarm, rules: Iterable[Route] = ()) -> list[str]:
    """The runbooks for an alarm (first matching rule wins); [] when no rule matches."""
    from .areas import default_routes

    for rule in [*rules, *default_routes()]:
        if rule.matches(alarm):
            return list(dict.fromkeys(rule.runbooks))
    return []
