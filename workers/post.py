"""Publishing a run in its Slack thread: the verdict first, then the details at Slack's pace.

1. Plans: one per fix and target the analysis offers with a button (the root cause's first),
   stored in Redis; a button carries only its plan's signed reference.
2. The verdict: the message the thread starts with (the ``/omni`` root, or Omni's first reply
   under an alarm) is edited into the root cause, its chain and its fix buttons, as soon as the
   analysis is done.  ``chat.update`` is not paced, so the verdict never waits behind posts.
3. The details: one message per runbook with something to say (paced, about one a second per
   channel), the runbooks that found nothing in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from commands.analysis import Analysis, Offer
from commands.models import Remediation, Report, Status

logger = logging.getLogger(__name__)

PlanMaker = Callable[[Offer], str | None]


def plan_maker(channel: str, thread_ts: str, environment: str) -> PlanMaker | None:
    """Store an offer as a plan (and audit the proposal); None where plans cannot be stored."""
    from .runtime import get_runtime

    rt = get_runtime()
    if rt.plans is None:
        return None
    plans, audit = rt.plans, rt.audit

    def make(offer: Offer) -> str | None:
        plan = plans.propose(
            offer.remediation,
            check=offer.check,
            finding=offer.finding,
            channel=channel,
            thread_ts=thread_ts,
            environment=environment,
        )
        if audit is not None:
            audit.record("proposed", user=None, plan=plan, outcome="proposed", check=offer.check)
        return plans.ref(plan)

    return make


def publish(
    slack: WebClient,
    *,
    channel: str,
    thread_ts: str,
    verdict_ts: str | None,
    header: render.Header,
    reports: list[Report],
    analysis: Analysis,
    make_plan: PlanMaker | None,
) -> dict[str, Any]:
    """Post one run: plans, then the verdict (``verdict_ts`` edited, or posted in the thread when
    None), then the details.  Returns what was posted, for the job's result."""
    refs: dict[tuple[str, str], tuple[Offer, str]] = {}
    if make_plan is not None:
        for offer in analysis.offers:
            if offer.symptom_of is None:
                ref = make_plan(offer)
                if ref:
                    key = (offer.remediation.id, offer.remediation.target or offer.remediation.id)
                    refs[key] = (offer, ref)
    root = analysis.root.check if analysis.root else None
    verdict_buttons = [v for v in refs.values() if v[0].check == root][:3]
    text, blocks = render.verdict_message(header, analysis, reports, verdict_buttons)
    if verdict_ts:
        slack.chat_update(channel=channel, ts=verdict_ts, text=text, blocks=blocks)
    else:
        verdict_ts = str(
            slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)[
                "ts"
            ]
        )

    def button_of(r: Remediation) -> tuple[Offer, str] | None:
        return refs.get((r.id, r.target or r.id))

    posted = 0
    quiet = []
    # the one runbook asked for is shown in full even when healthy: what was checked, and how;
    # runbooks of "all" and those followed upstream that found nothing get one line together
    asked = [r for r in reports if not r.followed]
    for report in reports:
        shown = len(asked) == 1 and report is asked[0]
        if shown or report.worst in (Status.FAIL, Status.ERROR, Status.WARN):
            for msg_text, msg_blocks in render.report_messages(report, analysis, button_of):
                slack.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=msg_text, blocks=msg_blocks
                )
                posted += 1
        else:
            quiet.append(report)
    line = render.quiet_line(quiet)
    if line is not None:
        slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=line[0], blocks=line[1])
        posted += 1
    return {"verdict_ts": verdict_ts, "messages": posted, "plans": len(refs)}


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
