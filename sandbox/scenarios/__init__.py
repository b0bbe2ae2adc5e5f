"""Scenarios: one fault per cause in the guide, compound faults, and benign-noise controls.

A scenario is a function that breaks (or, for a control, disturbs without breaking) a seeded
:class:`~sandbox.stack.Stack`, registered with :func:`scenario`::

    @scenario("aurora-stopped", "The Aurora cluster is stopped.", area="db",
              alarm="alb-5xx-high")
    def aurora_stopped(stack: Stack) -> None: ...

``area`` is where the fault is; ``alarm`` the sandbox alarm (name suffix) a real stack would
fire for it, or None when nothing pages and the on-call runs ``/omni diagnose``; ``kind`` is
``fault``, ``compound`` (several layers fail from one cause) or ``control`` (benign noise that
must raise nothing).  What Omni should conclude for each is judged outside the sandbox (the
accuracy benchmark and the tests), so the faults stay honest.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..stack import Stack

Fault = Callable[["Stack"], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    area: str
    apply: Fault
    alarm: str | None = None
    kind: str = "fault"  # "fault" | "compound" | "control"
    module: str = ""


_SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, summary: str, *, area: str, alarm: str | None = None, kind: str = "fault"
) -> Callable[[Fault], Fault]:
    if kind not in ("fault", "compound", "control"):
        raise ValueError(f"scenario {name}: kind must be fault, compound or control")

    def register(fn: Fault) -> Fault:
        if name in _SCENARIOS and _SCENARIOS[name].apply is not fn:
            raise ValueError(f"scenario {name!r} registered twice")
        _SCENARIOS[name] = Scenario(name, summary, area, fn, alarm, kind, fn.__module__)
        return fn

    return register


def discover() -> dict[str, Scenario]:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(_SCENARIOS)


def apply_scenario(name: str, stack: Stack) -> Scenario:
    scenarios = discover()
    if name not in scenarios:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(sorted(scenarios))}")
    chosen = scenarios[name]
    chosen.apply(stack)
    if chosen.alarm:
        # the alarm that pages for the fault is in ALARM in CloudWatch, as it is on a real stack
        # (the post in Slack is its notification, not its state)
        cloudwatch = stack.client("cloudwatch")
        alarm_name = f"{stack.names.alarm_prefix}{chosen.alarm}"
        if cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]:
            cloudwatch.set_alarm_state(
                AlarmName=alarm_name, StateValue="ALARM", StateReason=f"Threshold Crossed: {name}"
            )
    return chosen
