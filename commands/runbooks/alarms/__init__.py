"""Monitoring & Alarms (guide §8): missing notifications, muted alarms, what is firing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import Link, area
from ...models import Finding
from ...routing import Route

if TYPE_CHECKING:
    from ...alarm import Alarm


def _firing(effect: Finding) -> list[Alarm]:
    from ...alarm import Alarm

    alarms = []
    for row in effect.evidence.get("firing") or []:
        namespace, _, metric = str(row.get("metric", "")).rpartition("/")
        alarms.append(
            Alarm(source="cloudwatch", name=row.get("name"), namespace=namespace, metric=metric)
        )
    return alarms


def _routed_runbooks(effect: Finding) -> list[str]:
    """What the firing alarms route to: `/omni diagnose alarms` goes on to why they fire."""
    from ...routing import route

    return sorted({rb for alarm in _firing(effect) for rb in route(alarm)} - {"alarms"})


def _routes_to_the_cause(cause: Finding, effect: Finding) -> bool:
    """A firing alarm is explained by a failing check of an area its metric routes to (the
    5XX alarm by the load balancer's and the tasks' checks; the RDS CPU alarm by the
    database's): an alarm nothing explains may be a false positive."""
    from ...routing import route

    area = cause.check.split(".", 1)[0]
    return any(area in route(alarm) for alarm in _firing(effect))


AREA = area(
    "alarms",
    title="Monitoring and alarms",
    services=("cloudwatch", "sns"),
    # SNS failing to deliver (NumberOfNotificationsFailed): the alarms themselves go unheard
    routes=[Route(namespace="AWS/SNS")],
    links={"*": (Link("", "alarms.in_alarm", _routes_to_the_cause),)},
    expand={"alarms.in_alarm": _routed_runbooks},
    module=__name__,
    layer=9,
)
