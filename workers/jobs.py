"""RQ job functions (enqueued by dotted path from ``bot.queue``; contracts in ``bot.jobs``).

Every run is one pass: run the checks (the runbooks asked for, and what leads to them) → analyse
once (:func:`commands.analysis.analyse`) → publish the verdict first, then the details
(:mod:`workers.post`) → record the timeline, the graph.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import metrics, render
from bot.jobs import DIAGNOSTICS_QUEUE, REDELIVER, AlarmJob, DiagnoseJob, TriageJob
from commands import graphs, logs, output
from commands.analysis import Analysis, analyse
from commands.context import CheckContext
from commands.models import Report
from commands.registry import runbook_names
from commands.runner import make_context, run_runbooks

from . import record
from .post import plan_maker, publish, tell_thread
from .runtime import Runtime, get_runtime

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


@dataclass
class Run:
    ctx: CheckContext
    reports: list[Report]
    analysis: Analysis

    @property
    def followed(self) -> list[str]:
        """The areas followed upstream (not ``alarms`` and ``changes``, which every triage
        reads beside its runbooks)."""
        return [
            r.runbook for r in self.reports if r.followed and r.runbook not in ("alarms", "changes")
        ]

    @property
    def duration_ms(self) -> int:
        return max((r.duration_ms for r in self.reports), default=0)

    def result(self) -> dict[str, Any]:
        """The job's return value: the JSON report of the CLI (one object for one runbook)."""
        single = len([r for r in self.reports if not r.followed]) == 1
        return output.to_document(self.reports, self.analysis, single=single)


def investigate(rt: Runtime, env: Any, runbooks: list[str], *, kind: str) -> Run:
    """Run ``runbooks`` and, unless it is every runbook, what leads to them; analyse once."""
    started = time.perf_counter()
    ctx = make_context(env, rt.pool_for(env), on_call=_on_call)
    everything = set(runbooks) >= set(runbook_names())
    # a triage also asks what is firing: an alarm that nothing explains may be a false positive
    also = ("alarms.in_alarm", "changes.recent") if kind == "triage" else ("changes.recent",)
    reports = run_runbooks(runbooks, ctx, follow=not everything, expand=kind != "triage", also=also)
    analysis = analyse(reports)
    _observe(kind, runbooks, started, "failed" if analysis.root else "passed")
    return Run(ctx, reports, analysis)


# -- /omni diagnose ------------------------------------------------------------------------------
def run_diagnosis(job: dict[str, Any]) -> dict[str, Any]:
    """Run one runbook (or ``all``) and post its verdict and findings in the request's thread."""
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
    area, channel = request.area, request.channel
    with logs.bind(thread_ts=thread_ts):
        logger.info("diagnosis start area=%s channel=%s thread=%s", area, channel, thread_ts)
        record.journal(
            rt, channel, thread_ts, "started", f"Diagnosis of {area} started in {env.environment}"
        )
        names = runbook_names() if area == "all" else [area]
        run = investigate(rt, env, names, kind="diagnosis")
        record.journal_findings(rt, channel, thread_ts, "Diagnosis", run.reports, run.analysis)
        header = render.Header(
            kind="diagnose",
            environment=env.environment,
            region=env.region,
            asked=[area],
            followed=run.followed,
            user=request.user,
            duration_ms=run.duration_ms,
        )
        if deliver(rt, channel, thread_ts, thread_ts, header, run):
            graph_area = run.analysis.root.check.split(".")[0] if run.analysis.root else area
            record.post_graph(
                rt, channel, thread_ts, lambda: graphs.runbook_graph(graph_area, run.ctx), run.ctx
            )
        logger.info("diagnosis done area=%s duration_ms=%s", area, run.duration_ms)
        return run.result()


def _post_root(rt: Runtime, request: DiagnoseJob, environment: str) -> str | None:
    """The visible thread root of a /omni request ("Diagnosing db in production, asked by
    @x"); the verdict replaces it.  Where Omni may not post, the user is told privately."""
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
    record.journal(
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


# -- alarms ------------------------------------------------------------------------------------
def run_triage(job: dict[str, Any]) -> dict[str, Any]:
    """Triage an alarm: its runbooks and what leads to them, the verdict in its first reply."""
    request = TriageJob.model_validate(job)
    with logs.bind(job_id=_job_id(), thread_ts=request.thread_ts, alarm=request.alarm.name):
        return _run_triage(request)


def _run_triage(request: TriageJob) -> dict[str, Any]:
    rt = get_runtime()
    alarm, runbooks = request.alarm, list(request.runbooks)
    channel, thread_ts = request.channel, request.thread_ts
    env = rt.settings.for_environment(request.environment)
    record.journal(
        rt,
        channel,
        thread_ts,
        "started",
        f"Triage started in {env.environment}: {', '.join(runbooks)}",
    )
    run = investigate(rt, env, runbooks, kind="triage")
    record.journal_findings(rt, channel, thread_ts, "Triage", run.reports, run.analysis)
    header = render.Header(
        kind="triage",
        environment=env.environment,
        region=env.region,
        asked=runbooks,
        followed=run.followed,
        alarm=alarm.name,
        state=alarm.state,
        duration_ms=run.duration_ms,
    )
    if deliver(rt, channel, thread_ts, request.reply_ts, header, run):
        record.post_graph(
            rt,
            channel,
            thread_ts,
            lambda: (
                graphs.alarm_graph(alarm)
                or next(filter(None, (graphs.runbook_graph(rb, run.ctx) for rb in runbooks)), None)
            ),
            run.ctx,
        )
    record.refresh_alarm_catalog(run.ctx)
    logger.info("triage done alarm=%s runbooks=%s", alarm.name, runbooks)
    return run.result()


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


# -- delivery ----------------------------------------------------------------------------------
def _slack_down(exc: BaseException) -> bool:
    """Slack unreachable or failing (after the client's own retries), not a request error."""
    if isinstance(exc, SlackApiError):
        return int(getattr(exc.response, "status_code", 200) or 200) >= 500
    return isinstance(exc, OSError)  # URLError, connection refused, timeouts


def deliver(
    rt: Runtime,
    channel: str,
    thread_ts: str,
    verdict_ts: str | None,
    header: render.Header,
    run: Run,
) -> bool:
    """Publish the run; when Slack is down, keep it and let RQ retry the delivery later."""
    try:
        if thread_ts:
            publish(
                rt.slack,
                channel=channel,
                thread_ts=thread_ts,
                verdict_ts=verdict_ts,
                header=header,
                reports=run.reports,
                analysis=run.analysis,
                make_plan=plan_maker(channel, thread_ts, header.environment),
                bind=rt.plans.record_messages if rt.plans is not None else None,
            )
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

    Queue(DIAGNOSTICS_QUEUE, connection=rt.redis, serializer=JSONSerializer).enqueue(
        REDELIVER,
        kwargs={
            "channel": channel,
            "thread_ts": thread_ts,
            "verdict_ts": verdict_ts,
            "header": header.__dict__,
            "reports": [r.model_dump(mode="json") for r in run.reports],
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
    verdict_ts: str | None,
    header: dict[str, Any],
    reports: list[dict[str, Any]],
) -> int:
    """RQ retries this until Slack takes the posts (``REDELIVERY_BACKOFF_S``)."""
    rt = get_runtime()
    parsed = [Report.model_validate(r) for r in reports]
    head = render.Header(**header)
    if not thread_ts:  # Slack was down before the thread existed: its root first
        text = render.root_text(",".join(head.asked), head.environment, head.user or "")
        thread_ts = str(
            rt.slack.chat_postMessage(
                channel=channel, text=text, blocks=render.with_timeline_button(text)
            )["ts"]
        )
        verdict_ts = thread_ts if head.kind == "diagnose" else verdict_ts
    publish(
        rt.slack,
        channel=channel,
        thread_ts=thread_ts,
        verdict_ts=verdict_ts,
        header=head,
        reports=parsed,
        analysis=analyse(parsed),
        make_plan=plan_maker(channel, thread_ts, head.environment),
        bind=rt.plans.record_messages if rt.plans is not None else None,
    )
    logger.info("re-delivered %d report(s) to %s/%s", len(parsed), channel, thread_ts)
    return len(parsed)


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
    record.journal(
        get_runtime(), channel, thread_ts, "failed", f"{what} did not complete: {reason}"
    )
    if channel and thread_ts:
        tell_thread(
            get_runtime().slack, channel, thread_ts, what, reason, edit_root=kind == "diagnose"
        )
    else:  # it failed before its thread existed: tell the user who asked
        _respond(payload.get("response_url"), render.error_text(what, reason))
