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
    bind: Callable[[dict[str, list[str]]], None] | None = None,
) -> dict[str, Any]:
    """Post one run: plans, then the verdict (``verdict_ts`` edited, or posted in the thread when
    None), then the details; then ``bind`` each plan to the messages holding its button (a
    click elsewhere is refused).  Returns what was posted, for the job's result."""
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
    where: dict[str, list[str]] = {}  # plan id → the messages holding its button
    if verdict_ts:
        _buttons_at(where, verdict_ts, update(slack, channel, verdict_ts, text, blocks))
    else:
        for ts, part in send(slack, channel, thread_ts, text, blocks):
            verdict_ts = verdict_ts or ts
            _buttons_at(where, ts, part)

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
                for ts, part in send(slack, channel, thread_ts, msg_text, msg_blocks):
                    _buttons_at(where, ts, part)
                    posted += 1
        else:
            quiet.append(report)
    line = render.quiet_line(quiet)
    if line is not None:
        posted += len(send(slack, channel, thread_ts, line[0], line[1]))
    if bind is not None and where:
        bind(where)
    return {"verdict_ts": verdict_ts, "messages": posted, "plans": len(refs)}


# Slack's refusals of a message for its size (HTTP 200, ok: false): send smaller, never drop
TOO_LONG = frozenset({"msg_blocks_too_long", "invalid_blocks", "msg_too_long"})
Part = tuple[str, list[dict[str, Any]]]  # (ts, the blocks posted in it)


def _too_long(exc: SlackApiError) -> bool:
    return str(exc.response.get("error", "")) in TOO_LONG


def send(
    slack: WebClient, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]]
) -> list[Part]:
    """Post one message in the thread; when Slack refuses it as too long, post it in halves
    (recursively), a lone block cut down, and at worst as plain text: what was to be said is
    said.  The ts and blocks of each message posted."""
    try:
        sent = slack.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=text, blocks=blocks
        )
        return [(str(sent.get("ts", "")), blocks)]
    except SlackApiError as exc:
        if not _too_long(exc):
            raise
        logger.warning(
            "Slack refused a message of %d block(s) (%s): sending it smaller",
            len(blocks),
            exc.response.get("error"),
        )
    if len(blocks) > 1:
        half = len(blocks) // 2
        return send(slack, channel, thread_ts, text, blocks[:half]) + send(
            slack, channel, thread_ts, f"{text} (continued)", blocks[half:]
        )
    shorter = _shrink(blocks[0]) if blocks else None
    if shorter is not None:
        return send(slack, channel, thread_ts, text, [shorter])
    sent = slack.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text[:3000])
    return [(str(sent.get("ts", "")), [])]


def update(
    slack: WebClient, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Edit a message; refused as too long, edit it with its texts cut down (buttons kept), at
    worst to plain text.  The blocks it now holds."""
    while True:
        try:
            slack.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            return blocks
        except SlackApiError as exc:
            if not _too_long(exc):
                raise
            shrunk = [_shrink(b) or b for b in blocks]
            if not blocks or shrunk == blocks:
                slack.chat_update(channel=channel, ts=ts, text=text[:3000], blocks=[])
                return []
            logger.warning("Slack refused an edit as too long: cutting its texts down")
            blocks = shrunk


def _shrink(block: dict[str, Any]) -> dict[str, Any] | None:
    """The block with its long texts cut to half (None: nothing left to cut)."""
    changed = False

    def cut(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "text" and isinstance(v, str) and len(v) > 300:
                    out[k] = render.truncate(v, len(v) // 2)
                    changed = True
                else:
                    out[k] = cut(v)
            return out
        if isinstance(value, list):
            return [cut(v) for v in value]
        return value

    result = cut(block)
    return result if changed else None


def _buttons_at(where: dict[str, list[str]], ts: str, blocks: list[dict[str, Any]]) -> None:
    """Note the plans whose fix buttons are in a message posted at ``ts``."""
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            value = str(element.get("value", ""))
            if ts and str(element.get("action_id", "")).startswith("remediate:") and "." in value:
                where.setdefault(value.partition(".")[0], []).append(ts)


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
