"""RQ job functions (enqueued by dotted path from ``bot.queue``)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import keys, metrics, render, timeline
from bot.jobs import REDELIVER, AlarmJob, DiagnoseJob, TriageJob
from commands import graphs, logs
from commands.analysis import root_cause
from commands.models import Report, Status
from commands.registry import runbook_names
from commands.runner import make_context, run_runbooks

from .post import post_reports, tell_thread
from .runtime import get_runtime

logger = logging.getLogger(__name__)
REDELIVERY_BACKOFF_S = [10, 30, 60, 180, 600, 1800]


def _on_call(service: str, operation: str, seconds: float, error: str | None) -> None:
    if error:
        metrics.AWS_ERRORS.labels(service, error).inc()


def _observe(kind: str, runbooks: list[str], started: float, outcome: str) -> None:
    for rb in runbooks:
        metrics.JOBS.labels(kind, rb, outcome).inc()
        metrics.JOB_SECONDS.labels(kind, rb).observe(time.perf_counter() - started)


def _job_id() -> str | None:
    from rq import get_current_job

    job = get_current_job()
    return job.id if job else None


def run_diagnosis(job: dict[str, Any]) -> dict[str, Any]:
    """Run one runbook (or ``all``) and post its findings in the request's thread."""
    request = DiagnoseJob.model_validate(job)
    with logs.bind(job_id=_job_id(), thread_ts=request.thread_ts, request_id=request.request_id):
        return _run_diagnosis(request)


def _run_diagnosis(request: DiagnoseJob) -> dict[str, Any]:
    rt = get_runtime()
    env = rt.settings.for_environment(request.environment)
    try:
        thread_ts = request.thread_ts or _post_root(rt, request, env.environment)
    except Exception as exc:
        if not _slack_down(exc):
            raise
        # Slack is down: run the runbook anyway; the delivery job posts the root, then the rest
        logger.error("Slack unreachable for the thread root (%s)", type(exc).__name__)
        thread_ts = ""
    if thread_ts is None:
        return {"posted": False}
    with logs.bind(thread_ts=thread_ts):
        return _diagnose_in_thread(rt, request, env, thread_ts)


def _diagnose_in_thread(rt: Any, request: DiagnoseJob, env: Any, thread_ts: str) -> dict[str, Any]:
    area, channel = request.area, request.channel
    logger.info("diagnosis start area=%s channel=%s thread=%s", area, channel, thread_ts)
    started = time.perf_counter()
    ctx = make_context(env, rt.pool_for(env), on_call=_on_call)
    names = runbook_names() if area == "all" else [area]
    _journal(rt, channel, thread_ts, "started", f"Diagnosis of {area} started in {env.environment}")
    reports = run_runbooks(names, ctx)
    _observe("diagnosis", names, started, "failed" if any(r.failed for r in reports) else "passed")
    _journal_findings(rt, channel, thread_ts, "Diagnosis", reports)
    if not deliver(rt, channel, thread_ts, reports, request.user, root_is_alarm=False):
        return _result(reports)
    if area == "all":
        cause = root_cause(reports)
        area = cause.check.split(".")[0] if cause else ""
    post_graph(rt, channel, thread_ts, lambda: graphs.runbook_graph(area, ctx), ctx)
    logger.info(
        "diagnosis done area=%s thread=%s duration_ms=%s", area, thread_ts, reports[0].duration_ms
    )
    return _result(reports)


def _result(reports: list[Report]) -> dict[str, Any]:
    if len(reports) == 1:
        return reports[0].model_dump(mode="json")
    return {"reports": [r.model_dump(mode="json") for r in reports]}


def _slack_down(exc: BaseException) -> bool:
    """Slack unreachable or failing (after the client's own retries), not a request error."""
    if isinstance(exc, SlackApiError):
        return int(getattr(exc.response, "status_code", 200) or 200) >= 500
    return isinstance(exc, OSError)  # URLError, connection refused, timeouts


def deliver(
    rt: Any,
    channel: str,
    thread_ts: str,
    reports: list[Report],
    user: str | None,
    *,
    root_is_alarm: bool,
) -> bool:
    """Post the reports; when Slack is down, keep them and let RQ retry the delivery later."""
    try:
        post_reports(rt.slack, channel, thread_ts, reports, user, root_is_alarm=root_is_alarm)
        return True
    except Exception as exc:
        if not _slack_down(exc):
            raise
        logger.error(
            "Slack unreachable (%s): findings kept; delivery to %s/%s will be retried",
            type(exc).__name__,
            channel,
            thread_ts,
        )
        from rq import Queue, Retry
        from rq.serializers import JSONSerializer

        from bot.queue import DIAGNOSTICS_QUEUE

        Queue(DIAGNOSTICS_QUEUE, connection=rt.redis, serializer=JSONSerializer).enqueue(
            REDELIVER,
            kwargs={
                "channel": channel,
                "thread_ts": thread_ts,
                "reports": [r.model_dump(mode="json") for r in reports],
                "user": user,
                "root_is_alarm": root_is_alarm,
            },
            retry=Retry(max=len(REDELIVERY_BACKOFF_S), interval=REDELIVERY_BACKOFF_S),
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            description=f"re-deliver findings to {channel}/{thread_ts}",
        )
        metrics.SLACK_REDELIVERIES.inc()
        return False


def redeliver(
    channel: str,
    thread_ts: str,
    reports: list[dict[str, Any]],
    user: str | None,
    root_is_alarm: bool,
) -> int:
    """RQ retries this until Slack takes the posts (``REDELIVERY_BACKOFF_S``)."""
    rt = get_runtime()
    parsed = [Report.model_validate(r) for r in reports]
    if not thread_ts:  # Slack was down before the thread existed: its root first
        area = parsed[0].runbook if len(parsed) == 1 else "all"
        text = render.root_text(area, parsed[0].environment, user or "")
        thread_ts = str(
            rt.slack.chat_postMessage(
                channel=channel, text=text, blocks=render.with_timeline_button(text)
            )["ts"]
        )
    post_reports(rt.slack, channel, thread_ts, parsed, user, root_is_alarm=root_is_alarm)
    logger.info("re-delivered %d report(s) to %s/%s", len(parsed), channel, thread_ts)
    return len(parsed)


def _post_root(rt: Any, request: DiagnoseJob, environment: str) -> str | None:
    """The visible thread root of a /omni request ("Diagnosing db in production, asked by
    @x"); the findings go under it.  Where Omni may not post, the user is told privately."""
    channel, user, area = request.channel, request.user or "", request.area
    text = render.root_text(area, environment, user)
    try:
        root = rt.slack.chat_postMessage(
            channel=channel, text=text, blocks=render.with_timeline_button(text)
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        hint = (
            " Invite me first: `/invite @Omni`."
            if error in {"not_in_channel", "channel_not_found"}
            else ""
        )
        logger.warning("no thread root in %s: %s", channel, error)
        _respond(request.response_url, f":x: I could not post in this channel ({error}).{hint}")
        return None
    thread_ts = str(root["ts"])
    _remember_thread(thread_ts)
    _journal(
        rt,
        channel,
        thread_ts,
        "requested",
        f"Diagnosis of {area} in {environment} requested with /omni",
        user=user or None,
    )
    return thread_ts


def _remember_thread(thread_ts: str) -> None:
    """On the job, so a failure callback finds the thread the job started."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.meta["thread_ts"] = thread_ts
        job.save_meta()  # type: ignore[no-untyped-call]


def _respond(url: str | None, text: str) -> None:
    """An ephemeral answer to the user through the command's response_url (never raises)."""
    if not url:
        return
    from slack_sdk.webhook import WebhookClient

    try:
        WebhookClient(url, timeout=5).send(text=text, response_type="ephemeral")
    except Exception as exc:
        logger.warning("could not answer through the response_url: %s", type(exc).__name__)


def run_triage(job: dict[str, Any]) -> dict[str, Any]:
    """Run the runbooks an alarm routed to and post their findings in the alarm's thread."""
    request = TriageJob.model_validate(job)
    with logs.bind(job_id=_job_id(), thread_ts=request.thread_ts, alarm=request.alarm.name):
        return _run_triage(request)


def _run_triage(request: TriageJob) -> dict[str, Any]:
    rt = get_runtime()
    alarm, runbooks = request.alarm, list(request.runbooks)
    channel, thread_ts, reply_ts = request.channel, request.thread_ts, request.reply_ts
    started = time.perf_counter()
    env = rt.settings.for_environment(request.environment)
    ctx = make_context(env, rt.pool_for(env), on_call=_on_call)
    _journal(
        rt,
        channel,
        thread_ts,
        "started",
        f"Triage started in {env.environment}: {', '.join(runbooks)}",
    )
    reports = run_runbooks(runbooks, ctx)
    _observe("triage", runbooks, started, "failed" if any(r.failed for r in reports) else "passed")
    _journal_findings(rt, channel, thread_ts, "Triage", reports)
    if not deliver(rt, channel, thread_ts, reports, None, root_is_alarm=True):
        return {"reports": [r.model_dump(mode="json") for r in reports]}
    cause = root_cause(reports)
    worst = cause.title if cause else "no failing check"
    if reply_ts:
        verdict = render.triage_verdict_text(
            alarm.name, alarm.state, runbooks, worst, bool(cause), reports
        )
        rt.slack.chat_update(
            channel=channel, ts=reply_ts, text=verdict, blocks=render.with_timeline_button(verdict)
        )
    post_graph(
        rt,
        channel,
        thread_ts,
        lambda: (
            graphs.alarm_graph(alarm)
            or next(filter(None, (graphs.runbook_graph(rb, ctx) for rb in runbooks)), None)
        ),
        ctx,
    )
    refresh_alarm_catalog(ctx)
    logger.info("triage done alarm=%s runbooks=%s", alarm.name, runbooks)
    return {"reports": [r.model_dump(mode="json") for r in reports]}


def receive_alarm(job: dict[str, Any]) -> dict[str, Any]:
    """An alarm received over HTTP: post its headline in ``OMNI_ALARM_CHANNEL``, then triage it
    in that post's thread (a recovery goes to the original thread)."""
    received = AlarmJob.model_validate(job)
    rt = get_runtime()
    alarm = received.alarm
    with logs.bind(job_id=_job_id(), alarm=alarm.name):
        triage = rt.triage()
        if alarm.recovered:
            return {"outcome": triage.handle(alarm, rt.settings.alarm_channel or "", "").action}
        channel = rt.settings.alarm_channel
        if not channel:
            logger.warning("alarm %s received but OMNI_ALARM_CHANNEL is not set", alarm.name)
            return {"outcome": "no-channel"}
        posted = rt.slack.chat_postMessage(channel=channel, text=received.headline)
        outcome = triage.handle(alarm, channel, str(posted["ts"]))
        metrics.ALARMS.labels(outcome.action).inc()
        return {"outcome": outcome.action, "thread_ts": str(posted["ts"])}


def _journal(rt: Any, channel: str, thread_ts: str, event: str, text: str, **data: Any) -> None:
    timeline.record(rt.redis, channel, thread_ts, event, text, **data)


def _journal_findings(
    rt: Any, channel: str, thread_ts: str, what: str, reports: list[Report]
) -> None:
    """Each finding that is not ok, then one line for the ok ones, then the verdict (one
    Redis round trip)."""
    entries = []
    for report in reports:
        quiet = []
        for f in report.findings:
            if f.status in (Status.OK, Status.SKIPPED):
                quiet.append(f.check)
                continue
            entries.append(timeline.entry("finding", f"`{f.check}` {f.status.value}: {f.title}"))
        if quiet:
            entries.append(
                timeline.entry(
                    "finding",
                    f"{report.runbook}: {len(quiet)} check{'s' if len(quiet) > 1 else ''} "
                    f"ok or skipped ({', '.join(quiet)})",
                )
            )
    cause = root_cause(reports)
    ms = max((r.duration_ms for r in reports), default=0)
    entries.append(
        timeline.entry(
            "finished",
            f"{what} finished in {ms} ms: "
            + (
                f"most probable cause `{cause.check}`: {cause.title}"
                if cause
                else "no check failed"
            ),
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
                text=f":chart_with_downwards_trend: No data for {spec.title} in the last "
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
                text=f":chart_with_downwards_trend: No graph for {spec.title if spec else 'this thread'}: "
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


def on_job_failure(
    job: Any,
    connection: Any,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """RQ failure callback: exceptions, timeouts and abandoned jobs all tell their thread."""
    payload = (job.kwargs or {}).get("job") or {}
    kind = payload.get("kind")
    channel = payload.get("channel")
    thread_ts = payload.get("thread_ts") or (job.meta or {}).get("thread_ts")
    name = (payload.get("alarm") or {}).get("name")
    what = {
        "diagnose": f"Diagnosing {payload.get('area')}",
        "triage": f"Triage of {name}",
        "alarm": f"Announcing the alarm {name}",
    }.get(str(kind), f"Job {job.id}")
    error = exc_type.__name__ if exc_type else "unknown error"
    reason = {
        "JobTimeoutException": f"it did not finish within {job.timeout}s",
        "AbandonedJobError": "the worker running it stopped (killed or crashed)",
    }.get(error, f"{error}: {exc_value}")
    logger.error("job %s failed: %s", job.id, reason)
    timeline.record(
        get_runtime().redis, channel, thread_ts, "failed", f"{what} did not complete: {reason}"
    )
    if channel and thread_ts:
        tell_thread(
            get_runtime().slack, channel, thread_ts, what, reason, edit_root=kind == "diagnose"
        )
    else:  # it failed before its thread existed: tell the user who asked
        _respond(payload.get("response_url"), render.error_text(what, reason))
