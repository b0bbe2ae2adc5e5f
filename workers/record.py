"""What a run leaves besides its messages: the thread's timeline, its graph, the alarm catalog."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from bot import keys, metrics, timeline
from commands import graphs
from commands.analysis import Analysis
from commands.models import Report, Status
from commands.text import escape

from .runtime import get_runtime

logger = logging.getLogger(__name__)


def journal(
    rt: Any, channel: str | None, thread_ts: str | None, event: str, text: str, **data: Any
) -> None:
    timeline.record(rt.redis, channel, thread_ts, event, text, **data)


def journal_findings(
    rt: Any, channel: str, thread_ts: str, what: str, reports: list[Report], analysis: Analysis
) -> None:
    """Each finding that is not ok, then one line of the ok ones of each runbook asked for, one
    line for all the ok ones followed upstream, then the verdict (one Redis round trip)."""
    entries = []
    upstream: list[str] = []
    for report in reports:
        quiet = []
        for f in report.findings:
            if f.status in (Status.OK, Status.SKIPPED):
                quiet.append(f.check)
                continue
            entries.append(timeline.entry("finding", f"`{f.check}` {f.status.value}: {f.title}"))
        if quiet and report.followed:
            upstream += quiet
        elif quiet:
            entries.append(
                timeline.entry(
                    "finding",
                    f"{report.runbook}: {len(quiet)} check{'s' if len(quiet) > 1 else ''} "
                    f"ok or skipped ({', '.join(quiet)})",
                )
            )
    if upstream:
        entries.append(
            timeline.entry(
                "finding",
                f"followed upstream: {len(upstream)} check{'s' if len(upstream) > 1 else ''} "
                f"ok or skipped ({', '.join(upstream)})",
            )
        )
    seen: set[str] = set()
    for report in reports:  # each change tied to a finding: when, what, who
        for f in report.findings:
            for change in f.changes:
                if change.get("id") in seen:
                    continue
                seen.add(str(change.get("id")))
                entries.append(
                    timeline.entry(
                        "change",
                        f"Changed: {change.get('summary')} (lead for `{f.check}`)",
                        user=str(change.get("who") or "unknown"),
                        changed_at=change.get("at"),
                    )
                )
    cause = analysis.root
    ms = max((r.duration_ms for r in reports), default=0)
    entries.append(
        timeline.entry(
            "finished",
            f"{what} finished in {ms} ms: "
            + (f"root cause `{cause.check}`: {cause.title}" if cause else "no check failed"),
        )
    )
    timeline.record_many(rt.redis, channel, thread_ts, entries)


def post_graph(rt: Any, channel: str, thread_ts: str, spec_of: Callable[[], Any], ctx: Any) -> None:
    """After the findings: the graph in the thread, or one line saying why there is none.

    A graph is a courtesy: whatever goes wrong here is logged and noted, never raised."""
    settings = rt.settings
    if not settings.graphs:
        return
    spec = None
    try:
        spec = spec_of()
        if spec is None:
            return
        graph = graphs.build(spec, ctx.aws, settings.graph_window_min)
        if graph is None:
            rt.slack.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=f":chart_with_downwards_trend: No data for {escape(spec.title)} in the last "
                f"{settings.graph_window_min} minutes, so no graph.",
            )
            return
        rt.slack.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            file=graph.png,
            filename=graph.filename,
            title=f"{spec.title}, last {settings.graph_window_min} min",
            alt_txt=graph.alt_text,
        )
        metrics.GRAPHS.labels("posted").inc()
    except Exception as exc:
        logger.warning("graph not posted: %s: %s", type(exc).__name__, exc)
        metrics.GRAPHS.labels("failed").inc()
        with contextlib.suppress(Exception):
            rt.slack.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=f":chart_with_downwards_trend: No graph for {escape(spec.title) if spec else 'this thread'}: "
                f"{type(exc).__name__}.",
            )


def refresh_alarm_catalog(ctx: Any) -> int:
    """Publish the account's alarm names and metrics to Redis for the bot (which has no AWS)."""
    rt = get_runtime()
    key = keys.alarm_catalog(ctx.names.environment)
    redis = rt.redis
    if redis is None:
        return 0
    try:
        if redis.set(keys.alarm_catalog_fresh(ctx.names.environment), "1", nx=True, ex=300) is None:
            return 0
        alarms = ctx.aws.paginate("cloudwatch", "describe_alarms", "MetricAlarms")
    except Exception as exc:  # the catalog is an optimisation: never fail a triage over it
        logger.warning("alarm catalog not refreshed: %s", exc)
        return 0
    entries = {
        a["AlarmName"]: json.dumps(
            {
                "namespace": a.get("Namespace"),
                "metric": a.get("MetricName"),
                "arn": a.get("AlarmArn"),
                "dimensions": {d["Name"]: d["Value"] for d in a.get("Dimensions", [])},
                "threshold": a.get("Threshold"),
                "statistic": a.get("Statistic") or a.get("ExtendedStatistic"),
            }
        )
        for a in alarms
    }
    if entries:
        redis.hset(key, mapping=entries)
        redis.expire(key, 24 * 3600)
    return len(entries)
