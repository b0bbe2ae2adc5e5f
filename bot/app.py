"""The Bolt app: ``create_app(settings)`` and one ``register_*`` function per surface.

The slash command acks at once (parse only: no AWS, no Slack calls, no Redis), then a lazy
listener posts the visible thread root and enqueues the runbook by dotted path.  The bot
process holds no AWS credentials: the workers do the AWS work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from slack_bolt import Ack, App
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware.authorization.single_team_authorization import SingleTeamAuthorization
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from commands import environments, logs
from commands.errors import UnknownEnvironment
from commands.settings import Settings
from commands.sources.slack import SlackSource, is_alarm_source
from commands.text import escape, mention

from . import keys, metrics, render, timeline
from .approvals import register_fix_buttons
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


class _SameToken(logging.Filter):
    """Bolt warns "`token` will be unused" when it finds ``SLACK_BOT_TOKEN`` in the environment
    beside the client Omni gives it; that client holds the same token, so the warning (twice at
    every start) would only send a responder looking for a misconfiguration."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


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
    bolt_logger = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _SameToken) for f in bolt_logger.filters):
        bolt_logger.addFilter(_SameToken())
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
