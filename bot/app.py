"""The Bolt app: ``create_app(settings)`` and one ``register_*`` function per surface.

The slash command acks at once (parse only: no AWS, no Slack calls, no Redis), then a lazy
listener posts the visible thread root and enqueues the runbook by dotted path.  The bot
process holds no AWS credentials: the workers do the AWS work.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from slack_bolt import Ack, App
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.middleware.authorization.single_team_authorization import SingleTeamAuthorization
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from commands import environments, logs
from commands.errors import UnknownEnvironment
from commands.models import Risk
from commands.settings import Settings
from commands.sources.slack import SlackSource, is_alarm_source
from commands.text import escape, mention

from . import keys, metrics, render, timeline
from .audit import Audit
from .jobs import DiagnoseJob
from .parse import areas, parse
from .plans import PlanStore, signing_key
from .queue import Enqueuer, QueueUnavailable, connect
from .ratelimit import RateLimiter
from .roles import Roles
from .slack_client import TokenCheck, make_web_client
from .triage import Triage

logger = logging.getLogger(__name__)
audit_log = logging.getLogger("omni.audit")


@dataclass
class Deps:
    settings: Settings
    enqueuer: Enqueuer
    triage: Triage
    plans: PlanStore
    roles: Roles
    audit: Audit
    rate: RateLimiter


def create_app(
    settings: Settings,
    *,
    client: WebClient | None = None,
    enqueuer: Enqueuer | None = None,
    check_token: bool = True,
) -> App:
    settings.require_slack()
    assert settings.slack_signing_secret is not None
    enqueuer = enqueuer or Enqueuer(connect(settings), settings)
    client = client or make_web_client(settings, redis=enqueuer.redis)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # no auth.test at start: Omni serves (and queues alarms) while Slack's API is down;
        # TokenCheck checks the token in the background and hands Bolt the answer
        token_verification_enabled=False,
        # Ack functions only parse, so they run inline; the work is in lazy listeners, which Bolt
        # starts on its executor after the ack.  (With False, Bolt polls for the ack every 10 ms.)
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        name="omni",
    )
    deps = Deps(
        settings=settings,
        enqueuer=enqueuer,
        triage=Triage(settings, enqueuer.redis, enqueuer, client),
        plans=PlanStore(enqueuer.redis, signing_key(settings) or b"", settings.plan_ttl_s),
        roles=Roles(settings.role_bindings, client, enqueuer.redis),
        audit=Audit(enqueuer.redis, client, settings.audit_channel, settings.audit_retention_days),
        rate=RateLimiter(enqueuer.redis, settings.command_rate_per_min, settings.command_burst),
    )
    register_error_handler(app)
    register_commands(app, deps)
    register_alarm_listener(app, deps)
    register_fix_buttons(app, deps)
    register_timeline_button(app, deps)
    app.deps = deps  # type: ignore[attr-defined]
    if check_token:
        app.token_check = TokenCheck(client, lambda result: _authorized(app, result)).start()  # type: ignore[attr-defined]
    return app


def _authorized(app: App, result: Any) -> None:
    """Give Bolt's single-workspace authorization the ``auth.test`` answer TokenCheck got."""
    for middleware in app._middleware_list:
        if isinstance(middleware, SingleTeamAuthorization):
            middleware.auth_test_result = result


def register_error_handler(app: App) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        if isinstance(error, BoltUnhandledRequestError):
            return
        logger.error(
            "unhandled error in listener: %s: %s (type=%s)",
            type(error).__name__,
            error,
            body.get("type") or body.get("command"),
        )


def register_commands(app: App, deps: Deps) -> None:
    """``/omni``: everything happens inside the ack, and it is little: parse, check the
    environment, enqueue (one Redis round trip).  The worker that picks the job posts the thread
    root.  Nothing runs after the ack in this process, so a burst of commands is acked at the
    pace of acks alone (measured in docs/benchmarks.md)."""

    def ack_omni(ack: Ack, command: dict[str, Any]) -> None:
        with logs.bind(request_id=command.get("trigger_id"), user=command.get("user_id")):
            ack(**_answer(command))

    def _answer(command: dict[str, Any]) -> dict[str, Any]:
        cmd = parse(command.get("text"))
        user = command.get("user_id", "")
        if cmd.kind in ("audit", "diagnose") and (wait := deps.rate.take(user)):
            metrics.REJECTED.labels("slack", "rate_limited").inc()
            audit_log.warning("rate limited user=%s command=%s", user, cmd.kind)
            return {
                "response_type": "ephemeral",
                "text": f":hourglass: Easy: you sent more than {deps.settings.command_burst} "
                f"commands in a short while. Try again in {max(1, round(wait))} s.",
            }
        if cmd.kind == "audit":
            return {"response_type": "ephemeral", "text": _audit_listing()}
        if cmd.kind != "diagnose" or cmd.area is None:
            text, blocks = render.help_blocks(cmd.problem, areas())
            return {"text": text, "blocks": blocks, "response_type": "ephemeral"}
        channel = command.get("channel_id", "")
        try:
            environment = environments.choose(deps.settings, cmd.environment, channel)
        except UnknownEnvironment as exc:
            return {
                "response_type": "ephemeral",
                "text": f":grey_question: No environment `{exc.name}` here. Known: "
                + ", ".join(f"`{n}`" for n in exc.known),
            }
        job = DiagnoseJob(
            area=cmd.area,
            environment=environment,
            channel=channel,
            thread_ts=None,  # the worker posts the root and threads the findings under it
            user=user,
            request_id=command.get("trigger_id"),
            response_url=command.get("response_url"),
        )
        try:
            deps.enqueuer.diagnose(job)
        except QueueUnavailable:
            return {
                "response_type": "ephemeral",
                "text": ":x: Omni's queue (Redis) is unreachable right now, so nothing was started. "
                "Try again in a minute; if it persists, check the Redis behind Omni.",
            }
        return {
            "response_type": "ephemeral",
            "text": f":mag: Diagnosing *{cmd.area}* in *{environment}*: "
            "the findings will be in a thread in this channel.",
        }

    def _audit_listing() -> str:
        from .audit import read

        try:
            rows = read(deps.enqueuer.redis, 24 * 3600)[-20:]
        except RedisError:
            return ":x: Omni's store (Redis) is unreachable right now; try `/omni audit` again."
        lines = [
            f"`{r['at']}` {escape(r['event'])} by {mention(r['user'])}: `{escape(r['fix'])}` → "
            f"{escape(r['outcome'])}"
            for r in rows
        ]
        return "\n".join(lines) or "No audit record in the last 24 hours."

    app.command("/omni")(ack_omni)


_IGNORED_SUBTYPES = {
    "message_changed",
    "message_deleted",
    "channel_join",
    "channel_leave",
    "message_replied",
}


def register_alarm_listener(app: App, deps: Deps) -> None:
    """Alarm posts in the channels Omni is in get their triage in their own thread."""

    source = SlackSource(deps.settings)

    def ack_event(ack: Ack) -> None:
        ack()

    def on_message(body: dict[str, Any], event: dict[str, Any], context: dict[str, Any]) -> None:
        with logs.bind(
            request_id=body.get("event_id"), thread_ts=event.get("thread_ts") or event.get("ts")
        ):
            _on_message(body, event, context)

    def _on_message(body: dict[str, Any], event: dict[str, Any], context: dict[str, Any]) -> None:
        if event.get("subtype") in _IGNORED_SUBTYPES or not event.get("channel"):
            return
        if event.get("bot_id") and event.get("bot_id") == context.get("bot_id"):
            return  # never triage our own posts (Bolt already drops them; belt and braces)
        if not is_alarm_source(event, deps.settings.alarm_sources):
            return
        event_id = source.dedup_key(body)
        redis = deps.enqueuer.redis
        if event_id and not redis.set(keys.event(event_id), "1", nx=True, ex=3600):
            logger.info("event %s already handled (Slack retry)", event_id)
            return
        alarm = source.parse(event, deps.triage.catalog().keys())
        if alarm is None:
            return
        ts = event.get("thread_ts") or event["ts"]
        outcome = deps.triage.handle(alarm, event["channel"], ts)
        metrics.ALARMS.labels(outcome.action).inc()
        logger.info(
            "alarm %s state=%s → %s %s", alarm.name, alarm.state, outcome.action, outcome.runbooks
        )

    app.event("message")(ack=ack_event, lazy=[on_message])


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


def register_timeline_button(app: App, deps: Deps) -> None:
    """ "Timeline": the thread's incident timeline, posted as a Markdown file in the thread.

    Read-only, so anyone who can see the thread may ask for it."""

    def ack_timeline(ack: Ack) -> None:
        ack()

    def post_timeline(body: dict[str, Any], client: WebClient) -> None:
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
        thread_ts = (
            message.get("thread_ts")
            or container.get("thread_ts")
            or message.get("ts")
            or container.get("message_ts")
        )
        with logs.bind(request_id=body.get("trigger_id"), user=user, thread_ts=thread_ts):
            if not (channel and thread_ts):
                logger.warning("timeline click without a thread: %s", container)
                return
            entries = timeline.read(deps.enqueuer.redis, channel, str(thread_ts))
            text = timeline.markdown(entries, channel, str(thread_ts))
            try:
                client.files_upload_v2(
                    channel=channel,
                    thread_ts=str(thread_ts),
                    content=text,
                    filename=f"timeline-{thread_ts}.md",
                    title="Incident timeline",
                    initial_comment=f"Incident timeline ({len(entries)} entries), asked by <@{user}>.",
                )
            except SlackApiError as exc:
                logger.warning("timeline not posted: %s", exc.response.get("error"))
                client.chat_postEphemeral(
                    channel=channel,
                    user=user,
                    text=f":x: I could not post the timeline ({exc.response.get('error')}); "
                    f"`omni timeline {channel} {thread_ts}` prints it.",
                )

    app.action(render.TIMELINE_ACTION)(ack=ack_timeline, lazy=[post_timeline])
