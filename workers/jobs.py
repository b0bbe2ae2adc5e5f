"""RQ job functions (enqueued by dotted path from ``bot.queue``)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from commands.registry import runbook_names
from commands.runner import make_context, run_runbooks

from .post import post_reports, tell_thread
from .runtime import get_runtime

logger = logging.getLogger(__name__)


def run_diagnosis(request: dict[str, Any]) -> dict[str, Any]:
    """Run one runbook (or ``all``) and post its findings in the request's thread."""
    rt = get_runtime()
    area, channel, thread_ts = request["area"], request["channel"], request["thread_ts"]
    logger.info("diagnosis start area=%s channel=%s thread=%s", area, channel, thread_ts)
    ctx = make_context(rt.settings, rt.pool, environment=request.get("environment"))
    names = runbook_names() if area == "all" else [area]
    reports = run_runbooks(names, ctx)
    post_reports(rt.slack, channel, thread_ts, reports, request.get("user"))
    logger.info(
        "diagnosis done area=%s thread=%s duration_ms=%s", area, thread_ts, reports[0].duration_ms
    )
    if len(reports) == 1:
        return reports[0].model_dump(mode="json")
    return {"reports": [r.model_dump(mode="json") for r in reports]}


def on_job_failure(
    job: Any,
    connection: Any,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """RQ failure callback: exceptions, timeouts and abandoned jobs all tell their thread."""
    request = (job.kwargs or {}).get("request") or {}
    channel, thread_ts = request.get("channel"), request.get("thread_ts")
    name = exc_type.__name__ if exc_type else "unknown error"
    reason = {
        "JobTimeoutException": f"it did not finish within {job.timeout}s",
        "AbandonedJobError": "the worker running it stopped (killed or crashed)",
    }.get(name, f"{name}: {exc_value}")
    logger.error("job %s failed: %s", job.id, reason)
    if channel and thread_ts:
        tell_thread(
            get_runtime().slack, channel, thread_ts, f"Diagnosing {request.get('area')}", reason
        )
