"""Compound faults: one cause, failures in several layers."""

from __future__ import annotations

from ..stack import Stack
from . import scenario
from ._faults import app_logs, stop_tasks
from .alarms import _alarms_firing
from .alb import _alb_unhealthy
from .db import _aurora_stopped


@scenario(
    "outage-db-down",
    "Aurora stopped → the API crashes on DB errors → targets unhealthy → ALB 5XX alarm.",
    area="db",
    alarm="alb-5xx-high",
    kind="compound",
)
def _outage_db_down(stack: Stack) -> None:
    _aurora_stopped(stack)
    app_logs(
        stack,
        [
            f"ERROR connect ECONNREFUSED {stack.outputs['aurora_cluster_endpoint']}:5432 #{i}"
            for i in range(30)
        ],
    )
    stop_tasks(
        stack,
        3,
        stop_code="EssentialContainerExited",
        reason="Essential container in task exited",
        exit_code=1,
    )
    _alb_unhealthy(stack)
    _alarms_firing(stack)
