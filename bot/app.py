"""The Bolt app: ``create_app(settings)`` and one ``register_*`` function per surface.

The slash command acks at once (parse only: no AWS, no Slack calls, no Redis), then a lazy
listener posts the visible thread root and enqueues the runbook by dotted path.  The bot
process holds no AWS credentials: the workers do the AWS work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from commands import logs
from commands.alarm import from_slack_event
from commands.settings import Settings

from . import metrics, render
from .parse import AREAS, parse
from .queue import Enqueuer, QueueUnavailable, connect
from .slack_client import make_web_client
from .triage import Triage

logger = logging.getLogger(__name__)


@dataclass
class Deps:
    settings: Settings
    enqueuer: Enqueuer
    triage: Triage


def create_app(
    settings: Settings,
    *,
    client: WebClient | None = None,
    enqueuer: Enqueuer | None = None,
    token_verification: bool = True,
) -> App:
    settings.require_slack()
    assert settings.slack_signing_secret is not None
    enqueuer = enqueuer or Enqueuer(connect(settings), settings)
    client = client or make_web_client(settings, redis=enqueuer.redis)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        token_verification_enabled=token_verification,
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
    )
    register_error_handler(app)
    register_commands(app, deps)
    register_alarm_listener(app, deps)
    app.deps = deps  # type: ignore[attr-defined]
    return app


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
    def ack_omni(ack: Ack, command: dict[str, Any]) -> None:
        cmd = parse(command.get("text"))
        if cmd.kind == "help":
            text, blocks = render.help_blocks(cmd.problem, list(AREAS))
            ack(text=text, blocks=blocks, response_type="ephemeral")
            return
        ack()

    def start_diagnosis(command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        with logs.bind(request_id=command.get("trigger_id"), user=command.get("user_id")):
            _start_diagnosis(command, client, respond)

    def _start_diagnosis(command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        cmd = parse(command.get("text"))
        if cmd.kind != "diagnose" or cmd.area is None:
            return
        channel, user = command["channel_id"], command["user_id"]
        environment = cmd.environment or deps.settings.environment
        if not deps.enqueuer.ping():
            respond(
                response_type="ephemeral",
                text=":x: Omni's queue (Redis) is unreachable right now, so nothing was started. "
                "Try again in a minute; if it persists, check the Redis behind Omni.",
            )
            return
        try:
            root = client.chat_postMessage(
                channel=channel, text=render.root_text(cmd.area, environment, user)
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            hint = (
                " Invite me first: `/invite @Omni`."
                if error in {"not_in_channel", "channel_not_found"}
                else ""
            )
            respond(response_type="ephemeral", text=f":x: I could not post here ({error}).{hint}")
            return
        request = {
            "area": cmd.area,
            "environment": environment,
            "channel": channel,
            "thread_ts": root["ts"],
            "user": user,
            "request_id": command.get("trigger_id"),
        }
        try:
            deps.enqueuer.diagnose(request)
        except QueueUnavailable:
            client.chat_update(
                channel=channel,
                ts=root["ts"],
                text=render.error_text(
                    f"Diagnosing {cmd.area}",
                    "Omni's queue (Redis) is unreachable; nothing was started. Try again.",
                ),
            )
            respond(
                response_type="ephemeral",
                text=":x: Could not queue the diagnosis: Redis is unreachable.",
            )

    app.command("/omni")(ack=ack_omni, lazy=[start_diagnosis])


_IGNORED_SUBTYPES = {
    "message_changed",
    "message_deleted",
    "channel_join",
    "channel_leave",
    "message_replied",
}


def is_alarm_source(event: dict[str, Any], settings: Settings) -> bool:
    """Posts by the configured integrations; with none configured, any app or bot post."""
    ids = {
        event.get("bot_id"),
        event.get("app_id"),
        (event.get("bot_profile") or {}).get("app_id"),
        (event.get("bot_profile") or {}).get("id"),
        event.get("username"),
    } - {None}
    if settings.alarm_sources:
        return bool(ids & set(settings.alarm_sources))
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message"


def register_alarm_listener(app: App, deps: Deps) -> None:
    """Alarm posts in the channels Omni is in get their triage in their own thread."""

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
        if not is_alarm_source(event, deps.settings):
            return
        event_id = body.get("event_id")
        redis = deps.enqueuer.redis
        if event_id and not redis.set(f"omni:event:{event_id}", "1", nx=True, ex=3600):
            logger.info("event %s already handled (Slack retry)", event_id)
            return
        alarm = from_slack_event(event, deps.triage.catalog().keys())
        if alarm is None:
            return
        ts = event.get("thread_ts") or event["ts"]
        outcome = deps.triage.handle(alarm, event["channel"], ts)
        metrics.ALARMS.labels(outcome.action).inc()
        logger.info(
            "alarm %s state=%s → %s %s", alarm.name, alarm.state, outcome.action, outcome.runbooks
        )

    app.event("message")(ack=ack_event, lazy=[on_message])
