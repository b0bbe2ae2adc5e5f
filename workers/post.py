"""Posting a report to its Slack thread: findings as replies, then the root edited to a verdict."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from commands.analysis import root_cause
from commands.models import Finding, Remediation, Report, Status

logger = logging.getLogger(__name__)


def post_report(
    slack: WebClient,
    channel: str,
    thread_ts: str,
    report: Report,
    user: str | None,
    *,
    edit_root: bool = True,
) -> list[str]:
    """Reply in the thread (several messages when the report is long), then edit the root."""
    posted: list[str] = []
    for text, blocks in render.report_messages(
        report, _plan_ref(channel, thread_ts, report.environment)
    ):
        response = slack.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=text, blocks=blocks
        )
        posted.append(str(response["ts"]))
    if edit_root:
        text = render.verdict_text(report, user)
        slack.chat_update(
            channel=channel, ts=thread_ts, text=text, blocks=render.with_timeline_button(text)
        )
    return posted


def _plan_ref(channel: str, thread_ts: str, environment: str) -> render.PlanRef | None:
    """Store each proposed fix as a plan; the button carries only its signed reference."""
    from .runtime import get_runtime

    rt = get_runtime()
    if rt.plans is None:
        return None
    plans, audit = rt.plans, rt.audit

    def ref(finding: Finding, r: Remediation) -> str | None:
        plan = plans.propose(
            r,
            check=finding.check,
            finding=finding.title,
            channel=channel,
            thread_ts=thread_ts,
            environment=environment,
        )
        if audit is not None:
            audit.record("proposed", user=None, plan=plan, outcome="proposed", check=finding.check)
        return plans.ref(plan)

    return ref


def post_reports(
    slack: WebClient,
    channel: str,
    thread_ts: str,
    reports: list[Report],
    user: str | None,
    *,
    root_is_alarm: bool = False,
) -> None:
    """One report as is; several (``diagnose all``) lead with the root cause, skip quiet ones.

    ``root_is_alarm``: the thread's root is another app's alarm post, which Omni cannot edit.
    """
    if len(reports) == 1:
        post_report(slack, channel, thread_ts, reports[0], user, edit_root=not root_is_alarm)
        return
    cause = root_cause(reports)
    text, blocks = render.root_cause_message(cause, reports)
    slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
    for report in reports:
        if report.worst in (Status.FAIL, Status.ERROR, Status.WARN):
            for msg_text, msg_blocks in render.report_messages(report):
                slack.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=msg_text, blocks=msg_blocks
                )
    if not root_is_alarm:
        verdict = render.all_verdict_text(cause, reports, user)
        slack.chat_update(
            channel=channel, ts=thread_ts, text=verdict, blocks=render.with_timeline_button(verdict)
        )


def tell_thread(
    slack: WebClient,
    channel: str,
    thread_ts: str,
    what: str,
    reason: str,
    *,
    edit_root: bool = True,
) -> None:
    """Tell a thread that its job failed; never raises (it is the last resort)."""
    text = render.error_text(what, reason)
    try:
        slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        if edit_root:
            slack.chat_update(
                channel=channel, ts=thread_ts, text=text, blocks=render.with_timeline_button(text)
            )
    except SlackApiError as exc:
        logger.error(
            "could not tell thread %s/%s: %s", channel, thread_ts, exc.response.get("error")
        )
    except Exception as exc:
        logger.error("could not tell thread %s/%s: %s", channel, thread_ts, type(exc).__name__)
