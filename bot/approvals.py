"""Approve-to-fix clicks: the right person, the exact plan shown, on its own message, once.

A click on a fix button resolves its signed value to a sealed plan (:mod:`bot.plans`), checks
that it was posted in that message, that it has not expired or moved on, and the clicker's role
at click time; a high-risk fix needs a second, different operator.  The approval moves the plan
by compare-and-set and enqueues the fix for a worker; every refusal is answered in private and
audited.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from commands import logs
from commands.models import Risk
from commands.text import escape

from . import metrics
from .queue import QueueUnavailable

if TYPE_CHECKING:
    from .app import Deps

logger = logging.getLogger(__name__)


def register_fix_buttons(app: App, deps: Deps) -> None:
    """A click on a fix button: the right person, the exact plan shown, once, recorded."""

    def ack_click(ack: Ack) -> None:
        ack()

    def on_click(body: dict[str, Any], client: WebClient) -> None:
        user = (body.get("user") or {}).get("id", "")
        action = (body.get("actions") or [{}])[0]
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
        with logs.bind(request_id=body.get("trigger_id"), user=user):
            _on_click(user, action, channel, container, client)

    def tell(client: WebClient, channel: str, user: str, text: str) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            logger.warning("could not answer %s: %s", user, exc.response.get("error"))

    def _on_click(
        user: str,
        action: dict[str, Any],
        channel: str,
        container: dict[str, Any],
        client: WebClient,
    ) -> None:
        plan = deps.plans.resolve(str(action.get("value", "")))
        fix_id = (
            str(action.get("action_id", "")).split(":")[1]
            if ":" in str(action.get("action_id", ""))
            else ""
        )
        if plan is None or plan.fix_id != fix_id:
            deps.audit.record(
                "refused",
                user=user,
                outcome="invalid button value (forged, edited or unknown plan)",
                fix=fix_id or "-",
            )
            metrics.FIXES.labels(fix_id or "unknown", "refused_invalid").inc()
            tell(
                client,
                channel,
                user,
                ":no_entry: This button does not match any plan Omni proposed; nothing was done.",
            )
            return
        if not plan.posted_in(channel, container.get("message_ts"), container.get("thread_ts")):
            deps.audit.record(
                "refused",
                user=user,
                plan=plan,
                outcome=f"click from another message (channel {channel or '-'}, "
                f"message {container.get('message_ts') or '-'})",
            )
            metrics.FIXES.labels(plan.fix_id, "refused_invalid").inc()
            tell(
                client,
                channel,
                user,
                ":no_entry: This button was not posted here: a fix is approved only on the "
                "message Omni proposed it in. Nothing was done.",
            )
            return
        if plan.expired and plan.state in ("proposed", "awaiting_second"):
            deps.plans.transition(plan.id, {"proposed", "awaiting_second"}, "expired")
            deps.audit.record("refused", user=user, plan=plan, outcome="expired")
            tell(
                client,
                channel,
                user,
                f":hourglass: This plan expired at {time.strftime('%H:%M UTC', time.gmtime(plan.expires_at))}. Run the diagnosis again for a fresh one.",
            )
            _replace_button(
                client,
                channel,
                container,
                plan.fix_id,
                ":hourglass: expired: run the diagnosis again for a fresh plan",
            )
            return
        if plan.state not in ("proposed", "awaiting_second"):
            deps.audit.record("refused", user=user, plan=plan, outcome=f"already {plan.state}")
            tell(
                client,
                channel,
                user,
                f":information_source: This fix is already {plan.state} (approved by {', '.join(f'<@{u}>' for u in plan.approvals) or 'nobody'}).",
            )
            return
        if plan.state == "proposed" and not deps.roles.allows(user, plan.required_role):
            deps.audit.record(
                "refused",
                user=user,
                plan=plan,
                outcome=f"role {deps.roles.role_of(user)} < {plan.required_role}",
            )
            metrics.FIXES.labels(plan.fix_id, "refused_role").inc()
            tell(
                client,
                channel,
                user,
                f":no_entry: `{plan.fix_id}` is a {plan.risk.value}-risk fix: it needs the *{plan.required_role}* role, "
                f"and you are a {deps.roles.role_of(user)}. Nothing was done.",
            )
            return
        if plan.risk is Risk.HIGH and plan.state == "proposed":
            moved = deps.plans.transition(
                plan.id, {"proposed"}, "awaiting_second", approvals=[user]
            )
            if moved is None:
                tell(
                    client,
                    channel,
                    user,
                    ":information_source: Someone else acted on this plan first.",
                )
                return
            deps.audit.record(
                "approved",
                user=user,
                plan=plan,
                outcome="first approval (high risk: needs a second person)",
            )
            client.chat_postMessage(
                channel=plan.channel,
                thread_ts=plan.thread_ts,
                text=f":raised_hand: <@{user}> approved `{plan.fix_id}` on {escape(plan.target)}. "
                "High risk: a *second, different* person must press the button too.",
            )
            return
        if plan.state == "awaiting_second":
            if user in plan.approvals:
                deps.audit.record("refused", user=user, plan=plan, outcome="same person twice")
                tell(
                    client,
                    channel,
                    user,
                    ":no_entry: You already approved this fix: a *different* person must confirm it.",
                )
                return
            if not deps.roles.allows(user, "operator"):
                deps.audit.record(
                    "refused", user=user, plan=plan, outcome="second approver is not an operator"
                )
                tell(
                    client,
                    channel,
                    user,
                    ":no_entry: The second approver must be an operator or an admin.",
                )
                return
        approved = deps.plans.transition(
            plan.id, {plan.state}, "approved", approvals=[*plan.approvals, user]
        )
        if approved is None:
            deps.audit.record(
                "refused", user=user, plan=plan, outcome="lost the race: already acted on"
            )
            tell(
                client,
                channel,
                user,
                ":information_source: Someone else acted on this plan first; it runs once.",
            )
            return
        deps.audit.record("approved", user=user, plan=approved, outcome="approved")
        try:
            deps.enqueuer.fix(approved.id, user)
        except QueueUnavailable:
            deps.plans.transition(approved.id, {"approved"}, "proposed", approvals=plan.approvals)
            tell(
                client,
                channel,
                user,
                ":x: Omni's queue (Redis) is unreachable; the fix was not started. Try again.",
            )
            return
        _replace_button(
            client,
            channel,
            container,
            plan.fix_id,
            f":gear: approved by {', '.join(f'<@{u}>' for u in approved.approvals)}: running…",
        )
        client.chat_postMessage(
            channel=plan.channel,
            thread_ts=plan.thread_ts,
            text=f":gear: <@{user}> approved `{plan.fix_id}` on {escape(plan.target)} in *{escape(plan.environment)}*: running it now.",
        )

    def _replace_button(
        client: WebClient, channel: str, container: dict[str, Any], fix_id: str, note: str
    ) -> None:
        ts = container.get("message_ts")
        try:
            history = client.conversations_replies(
                channel=channel, ts=container.get("thread_ts") or ts or "", limit=200
            )
            messages: list[dict[str, Any]] = list(history.get("messages", []))
            original = next((m for m in messages if m.get("ts") == ts), None)
            if not original or not ts:
                return
            blocks = [
                (
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
                    if b.get("type") == "actions"
                    and any(
                        str(e.get("action_id", "")).startswith(f"remediate:{fix_id}")
                        for e in b.get("elements", [])
                    )
                    else b
                )
                for b in original.get("blocks") or []
            ]
            client.chat_update(channel=channel, ts=ts, text=original.get("text", ""), blocks=blocks)
        except SlackApiError as exc:
            logger.warning("could not replace the button: %s", exc.response.get("error"))

    app.action(re.compile(r"^remediate:"))(ack=ack_click, lazy=[on_click])
