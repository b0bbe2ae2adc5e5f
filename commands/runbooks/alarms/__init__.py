"""Monitoring & Alarms (guide §8): missing notifications, muted alarms, what is firing."""

from __future__ import annotations

from ...areas import area

AREA = area(
    "alarms",
    title="Monitoring and alarms",
    services=("cloudwatch", "sns"),
    module=__name__,
)
