"""Fix jobs: run an approved plan once, post before → after, verify, audit."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from types import TracebackType
from typing import Any

from bot import keys, metrics, render
from bot.jobs import RUN_FOLLOW_UP, RUN_VERIFY, FixJob
from bot.plans import Plan, PlanStore
from commands import logs
from commands.errors import AwsCallError
from commands.fixes import FixContext, FixRefused, FollowUp, catalogue
from commands.fixes import run_fix as execute
from commands.models import Status
from commands.registry import all_checks
from commands.runner import make_context, run_check
from commands.text import escape

from .runtime import Runtime, get_runtime

logger = logging.getLogger(__name__)


def run_fix(job: dict[str, Any]) -> dict[str, Any]:
    """Run an approved plan once (see :class:`bot.jobs.FixJob`)."""
    fix = FixJob.model_validate(job)
    with logs.bind(plan_id=fix.plan_id, user=fix.approver):
        return _run_fix(fix.plan_id, fix.approver)


def _unsound(plans: PlanStore, plan: Plan | None, approver: str) -> str | None:
    """Why a stored plan must not run though its job names it, or None: its seal (what Omni
    wrote), and its approvals (enough distinct people, the job's approver among them)."""
    if plan is None:
        return None
    if not plans.sealed(plan):
        return "the plan in Redis does not carry Omni's seal (written or changed outside Omni)"
    if plan.state == "approved" and (
        len(set(plan.approvals)) < plan.approvals_needed or approver not in plan.approvals
    ):
        return f"the plan has {len(set(plan.approvals))} of {plan.approvals_needed} approvals"
    return None


def _run_fix(plan_id: str, approver: str) -> dict[str, Any]:
    rt = get_runtime()
    assert rt.plans is not None and rt.audit is not None and rt.redis is not None
    plans, audit = rt.plans, rt.audit
    stored = plans.get(plan_id)
    refusal = _unsound(plans, stored, approver)
    if stored is not None and refusal:  # written or changed in Redis by someone without the key
        audit.record("refused", user=approver, plan=stored, outcome=refusal)
        metrics.FIXES.labels(stored.fix_id, "refused_invalid").inc()
        logger.warning("fix %s refused: %s", plan_id, refusal)
        rt.slack.chat_postMessage(
            channel=stored.channel,
            thread_ts=stored.thread_ts,
            text=f":no_entry: `{escape(stored.fix_id)}` not run: {refusal}.",
        )
        return {"ran": False, "refused": refusal}
    plan = plans.transition(plan_id, {"approved"}, "running")
    if plan is None:  # a duplicate job, or the plan moved on: exactly once
        current = plans.get(plan_id)
        logger.info("fix %s not run: plan is %s", plan_id, current.state if current else "gone")
        return {"ran": False, "state": current.state if current else None}

    def post(text: str) -> None:
        rt.slack.chat_postMessage(channel=plan.channel, thread_ts=plan.thread_ts, text=text)

    hour = int(time.time() // 3600)
    count = int(rt.redis.incr(keys.fix_count(plan.target, hour)))
    rt.redis.expire(keys.fix_count(plan.target, hour), 7200)
    if count > rt.settings.fix_limit_per_hour:
        plans.transition(plan_id, {"running"}, "failed", outcome="circuit breaker")
        audit.record(
            "refused",
            user=approver,
            plan=plan,
            outcome=f"circuit breaker: {count - 1} fixes on {plan.target} this hour",
        )
        metrics.FIXES.labels(plan.fix_id, "circuit_breaker").inc()
        post(
            f":octagonal_sign: `{plan.fix_id}` not run: {rt.settings.fix_limit_per_hour} fixes already ran on {escape(plan.target)} this hour "
            "(OMNI_FIX_LIMIT_PER_HOUR)."
        )
        return {"ran": False}
    env = rt.settings.for_environment(plan.environment)
    ctx = FixContext(rt.fix_pool_for(env, approver), env.region, dry_run=rt.settings.dry_run)
    try:
        result = execute(plan.fix_id, plan.params, ctx)
    except (FixRefused, AwsCallError, ValueError) as exc:
        plans.transition(plan_id, {"running"}, "failed", outcome=str(exc))
        audit.record("executed", user=approver, plan=plan, outcome=f"failed: {exc}")
        metrics.FIXES.labels(plan.fix_id, "failed").inc()
        post(f":x: `{plan.fix_id}` on {escape(plan.target)} failed: {escape(exc)}")
        return {"ran": True, "ok": False, "error": str(exc)}
    audit.record(
        "executed",
        user=approver,
        plan=plan,
        outcome="succeeded",
        before=result.before,
        after=result.after,
    )
    metrics.FIXES.labels(plan.fix_id, "dry_run" if ctx.dry_run else "succeeded").inc()
    post(
        render.fix_outcome_text(plan.fix_id, result.summary, result.before, result.after, approver)
    )
    if result.follow_up is not None:
        _schedule_follow_up(rt, plan.id, plan.environment, result.follow_up)
        post(f":alarm_clock: {escape(result.follow_up.note)}")
    verdict, ok = _verify(rt, plan.check, plan.environment)
    plans.transition(plan_id, {"running"}, "succeeded", outcome=verdict)
    audit.record("verified", user=approver, plan=plan, outcome=verdict)
    settles = catalogue()[plan.fix_id].settles_min if plan.fix_id in catalogue() else 0
    if not ok and settles and not ctx.dry_run:
        _schedule_verify(rt, plan.id, settles)
        verdict += (
            f" (its metric still shows the minutes before the fix: Omni checks again in "
            f"{settles} min)"
        )
    post(f":mag: Verification: {verdict}")
    return {
        "ran": True,
        "ok": True,
        "before": result.before,
        "after": result.after,
        "verification": verdict,
    }


def _verify(rt: Runtime, check_id: str, environment: str) -> tuple[str, bool]:
    """Re-run the check the plan came from: what it says now, and whether that is ok."""
    spec = all_checks().get(check_id)
    if spec is None:
        return f"no check {check_id} to re-run", False
    from concurrent.futures import ThreadPoolExecutor

    env = rt.settings.for_environment(environment)
    ctx = make_context(env, rt.pool_for(env))
    with ThreadPoolExecutor(max_workers=8) as inner:
        ctx._inner = inner
        finding = run_check(spec, ctx)
    text = f"`{check_id}` is now *{finding.status.value}*: {escape(finding.title)}"
    return text, finding.status in (Status.OK, Status.SKIPPED)


def _schedule_verify(rt: Runtime, plan_id: str, minutes: int) -> None:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from bot.queue import FIXES_QUEUE

    Queue(FIXES_QUEUE, connection=rt.redis, serializer=JSONSerializer).enqueue_in(
        timedelta(minutes=minutes),
        RUN_VERIFY,
        kwargs={"plan_id": plan_id, "minutes": minutes},
        job_id=f"verify-{plan_id}",
    )


def run_verify(plan_id: str, minutes: int) -> dict[str, Any]:
    """RQ's scheduler runs this ``minutes`` after a fix whose check reads a lagging metric."""
    rt = get_runtime()
    assert rt.plans is not None and rt.audit is not None
    plan = rt.plans.get(plan_id)
    if plan is None:
        return {"verified": False, "reason": "plan gone"}
    verdict, ok = _verify(rt, plan.check, plan.environment)
    rt.audit.record(
        "verified", user=plan.approvals[-1] if plan.approvals else None, plan=plan, outcome=verdict
    )
    rt.slack.chat_postMessage(
        channel=plan.channel,
        thread_ts=plan.thread_ts,
        text=f":mag: Verification {minutes} min after `{plan.fix_id}`: {verdict}"
        + ("" if ok else " — the fix did not settle it: look again at the findings above."),
    )
    return {"verified": ok, "verification": verdict}


def _schedule_follow_up(rt: Runtime, plan_id: str, environment: str, follow_up: FollowUp) -> None:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from bot.queue import FIXES_QUEUE

    queue = Queue(FIXES_QUEUE, connection=rt.redis, serializer=JSONSerializer)
    queue.enqueue_in(
        timedelta(minutes=float(follow_up.after_minutes)),
        RUN_FOLLOW_UP,
        kwargs={
            "plan_id": plan_id,
            "fix_id": follow_up.fix,
            "params": follow_up.params,
            "environment": environment,
        },
        job_id=f"follow-up-{plan_id}",
    )


def run_follow_up(
    plan_id: str, fix_id: str, params: dict[str, Any], environment: str | None = None
) -> dict[str, Any]:
    """RQ's scheduler runs this when a fix's follow-up is due (a mute ends)."""
    rt = get_runtime()
    plan = rt.plans.get(plan_id) if rt.plans else None
    env = rt.settings.for_environment(environment or (plan.environment if plan else None))
    # idempotent, so the environment's retrying clients (its fix role when it has one)
    pool = rt.fix_pool_for(env, "omni-scheduler") if env.fix_role_arn else rt.pool_for(env)
    result = execute(fix_id, params, FixContext(pool, env.region))
    if rt.audit is not None:
        rt.audit.record(
            "executed",
            user="omni-scheduler",
            plan=plan,
            outcome=f"follow-up on schedule: {result.summary}",
            fix=fix_id,
        )
    if plan is not None:
        rt.slack.chat_postMessage(
            channel=plan.channel,
            thread_ts=plan.thread_ts,
            text=f":bell: Scheduled follow-up of `{plan.fix_id}`: {escape(result.summary)}.",
        )
    return {"after": result.after}


def on_fix_failure(
    job: Any,
    connection: Any,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    rt = get_runtime()
    payload = (job.kwargs or {}).get("job") or {}
    plan_id = str(payload.get("plan_id", ""))
    plan = rt.plans.get(plan_id) if rt.plans else None
    reason = f"{exc_type.__name__ if exc_type else 'error'}: {exc_value}"
    if plan is not None and rt.plans is not None:
        rt.plans.transition(plan_id, {"approved", "running"}, "failed", outcome=reason)
        if rt.audit is not None:
            rt.audit.record(
                "executed",
                user=payload.get("approver"),
                plan=plan,
                outcome=f"failed: {reason}",
            )
        try:
            rt.slack.chat_postMessage(
                channel=plan.channel,
                thread_ts=plan.thread_ts,
                text=f":x: `{plan.fix_id}` did not complete: {escape(reason)}. Check AWS before retrying.",
            )
        except Exception:
            logger.exception("could not tell the thread about fix %s", plan_id)
