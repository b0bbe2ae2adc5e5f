"""``omni serve``: the Bolt app behind gunicorn (HTTP), or over Socket Mode.

HTTP routes: ``/slack/events`` (commands, events, interactivity), ``/healthz`` (alive),
``/readyz`` (Redis reachable).  A request that fails Slack's signature check gets Bolt's 401
and an audit line in the log here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, Response, request
from redis.exceptions import RedisError
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from commands import logs
from commands.alarm import Alarm, from_pagerduty_webhook, parse_any
from commands.settings import Settings, get_settings

from . import metrics
from .app import create_app
from .pagerduty import signature_ok
from .queue import DIAGNOSTICS_QUEUE, FIXES_QUEUE
from .sns import CertificateStore, SnsRejected, subscribe_url_ok, verify

logger = logging.getLogger(__name__)
audit_log = logging.getLogger("omni.audit")
SLACK_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json")
REPLAY_WINDOW_S = 360  # a signed request is only valid for 5 minutes anyway


def create_web_app(
    settings: Settings,
    bolt_app: App | None = None,
    *,
    cert_store: CertificateStore | None = None,
    fetch_subscribe_url: Callable[[str], Any] | None = None,
) -> Flask:
    bolt = bolt_app or create_app(settings)
    handler = SlackRequestHandler(bolt)
    web = Flask("omni")
    web.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    deps = bolt.deps  # type: ignore[attr-defined]
    register_alarm_endpoints(
        web,
        settings,
        deps,
        bolt,
        cert_store or CertificateStore(settings.sns_cert_dir),
        fetch_subscribe_url or _visit,
    )

    signing = settings.slack_signing_secret
    verifier = SignatureVerifier(signing.get_secret_value() if signing else "")
    redis = deps.enqueuer.redis

    @web.errorhandler(413)
    def too_large(_: Exception) -> tuple[dict[str, Any], int]:
        endpoint = request.path.strip("/").split("/")[0] or "root"
        return _reject(endpoint, "oversized", 413, "request body too large (limit 1 MiB)")

    def precheck() -> tuple[dict[str, Any], int] | None:
        """What Bolt does not refuse by itself: wrong content type, replays, bad payloads."""
        if request.mimetype not in SLACK_CONTENT_TYPES:
            return _reject("slack", "content_type", 415, f"content type {request.mimetype!r}")
        body = request.get_data(cache=True, as_text=True)
        if request.form.get("ssl_check") == "1":
            return None  # Slack's unsigned SSL check: Bolt answers it
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        try:
            valid = bool(timestamp and signature) and verifier.is_valid(body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            return _reject("slack", "signature", 401, "signature or timestamp invalid")
        try:
            fresh = redis.set(f"omni:slack-sig:{signature}", "1", nx=True, ex=REPLAY_WINDOW_S)
        except RedisError as exc:  # Redis away: the 5-minute timestamp window still holds
            logger.warning("replay check skipped: %s", type(exc).__name__)
            fresh = True
        if not fresh:
            return _reject("slack", "replay", 401, "this exact signed request was seen before")
        try:
            payload = request.form.get("payload")
            doc = (
                json.loads(payload if payload is not None else body)
                if (payload is not None or request.mimetype == "application/json")
                else {}
            )
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return _reject("slack", "malformed", 400, "payload is not a JSON object")
        return None

    @web.post("/slack/events")
    def slack_events() -> Response | tuple[dict[str, Any], int]:
        started = time.perf_counter()
        refused = precheck()
        if refused is not None:
            return refused
        response: Response = handler.handle(request)
        kind = (
            "command"
            if request.form.get("command")
            else "interactive"
            if request.form.get("payload")
            else "event"
        )
        metrics.ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
        if response.status_code in (401, 403):
            metrics.REJECTED.labels("slack", "signature").inc()
            audit_log.warning(
                "rejected slack request status=%s reason=%s remote=%s retry=%s",
                response.status_code,
                "signature or timestamp invalid",
                request.headers.get("X-Forwarded-For", request.remote_addr),
                request.headers.get("X-Slack-Retry-Num"),
            )
        return response

    @web.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        return {"status": "ok"}, 200

    @web.get("/metrics")
    def metrics_page() -> Response:
        body, content_type = metrics.exposition(
            deps.enqueuer.redis, (DIAGNOSTICS_QUEUE, FIXES_QUEUE)
        )
        return Response(
            body, mimetype=content_type.split(";")[0], headers={"Content-Type": content_type}
        )

    @web.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        if deps.enqueuer.ping():
            return {"status": "ready", "redis": "ok"}, 200
        return {"status": "not ready", "redis": "unreachable"}, 503

    return web


def _reject(endpoint: str, reason: str, status: int, detail: str) -> tuple[dict[str, Any], int]:
    """Refuse a request: counted in /metrics, one audit line, nothing enqueued."""
    metrics.REJECTED.labels(endpoint, reason).inc()
    audit_log.warning(
        "rejected %s request status=%s reason=%s detail=%s remote=%s retry=%s",
        endpoint,
        status,
        reason,
        detail,
        request.headers.get("X-Forwarded-For", request.remote_addr),
        request.headers.get("X-Slack-Retry-Num"),
    )
    return {"error": f"{reason}: {detail}"}, status


def _visit(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        response.read(1024)


def register_alarm_endpoints(
    web: Flask,
    settings: Settings,
    deps: Any,
    bolt: App,
    store: CertificateStore,
    visit: Callable[[str], Any],
) -> None:
    """``POST /sns`` (an SNS HTTPS subscription) and ``POST /pagerduty`` (v3 webhooks)."""
    background = ThreadPoolExecutor(max_workers=8, thread_name_prefix="omni-alarm")
    redis = deps.enqueuer.redis

    def post_and_triage(alarm: Alarm, headline: str) -> None:
        try:
            if alarm.recovered:
                deps.triage.handle(alarm, settings.alarm_channel or "", "")
                return
            if not settings.alarm_channel:
                logger.warning("alarm %s received but OMNI_ALARM_CHANNEL is not set", alarm.name)
                return
            posted = bolt.client.chat_postMessage(channel=settings.alarm_channel, text=headline)
            deps.triage.handle(alarm, settings.alarm_channel, str(posted["ts"]))
        except Exception:
            logger.exception("alarm %s could not be triaged", alarm.name)

    @web.post("/sns")
    def sns() -> tuple[dict[str, Any], int]:
        try:
            message = json.loads(request.get_data(cache=False) or b"{}")
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError:
            return _reject("sns", "malformed", 400, "body is not an SNS JSON message")
        try:
            verify(
                message,
                store,
                max_age_s=settings.sns_max_age_s,
                check_cert_dates=settings.sns_verify_cert_dates,
            )
        except SnsRejected as exc:
            metrics.REJECTED.labels("sns", exc.reason).inc()
            audit_log.warning(
                "rejected sns message reason=%s topic=%s remote=%s",
                exc,
                message.get("TopicArn"),
                request.remote_addr,
            )
            return {"error": f"rejected: {exc}"}, 403
        kind, topic = message.get("Type"), message.get("TopicArn")
        if kind == "SubscriptionConfirmation":
            url = str(message.get("SubscribeURL") or message.get("SubscribeUrl") or "")
            if topic not in settings.sns_topics or not subscribe_url_ok(url):
                audit_log.warning(
                    "refused sns subscription topic=%s (not in OMNI_SNS_TOPICS)", topic
                )
                return {"error": f"topic {topic} is not allowed (OMNI_SNS_TOPICS)"}, 403
            visit(url)
            logger.info("confirmed sns subscription to %s", topic)
            return {"confirmed": topic}, 200
        if kind != "Notification":
            return {"ignored": kind}, 200
        if not redis.set(f"omni:sns:{message.get('MessageId')}", "1", nx=True, ex=86400):
            return {"duplicate": message.get("MessageId")}, 200
        alarm = parse_any(message)
        if alarm is None:
            return {"ignored": "not a CloudWatch alarm"}, 200
        headline = (
            f":rotating_light: *{alarm.state}*: `{alarm.name}` in {alarm.region or '?'}"
            f" (account {alarm.account or '?'}): {alarm.reason or ''}"
        )[:2900]
        background.submit(post_and_triage, alarm, headline)
        return {"accepted": alarm.name}, 202

    @web.post("/pagerduty")
    def pagerduty() -> tuple[dict[str, Any], int]:
        raw = request.get_data(cache=False)
        secret = (
            settings.pagerduty_webhook_secret.get_secret_value()
            if settings.pagerduty_webhook_secret
            else ""
        )
        if not signature_ok(secret, raw, request.headers.get("X-PagerDuty-Signature")):
            metrics.REJECTED.labels("pagerduty", "signature").inc()
            audit_log.warning(
                "rejected pagerduty webhook: bad or missing signature remote=%s",
                request.remote_addr,
            )
            return {"error": "bad signature"}, 401
        webhook_id = request.headers.get("X-Webhook-Id")
        if webhook_id and not redis.set(f"omni:pd-webhook:{webhook_id}", "1", nx=True, ex=86400):
            return {"duplicate": webhook_id}, 200
        try:
            doc = json.loads(raw)
        except ValueError:
            return _reject("pagerduty", "malformed", 400, "body is not JSON")
        event_type = str((doc.get("event") or {}).get("event_type", ""))
        if event_type not in ("incident.triggered", "incident.resolved"):
            return {"ignored": event_type}, 200
        alarm = from_pagerduty_webhook(doc, deps.triage.catalog().keys())
        data = (doc.get("event") or {}).get("data") or {}
        headline = (
            f":rotating_light: PagerDuty incident <{data.get('html_url')}|#{data.get('number')}> "
            f"triggered: {data.get('title')} ({(data.get('service') or {}).get('summary')})"
        )[:2900]
        background.submit(post_and_triage, alarm, headline)
        return {"accepted": alarm.incident_id}, 202


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _run_gunicorn(settings: Settings, host: str, port: int, workers: int, threads: int) -> int:
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            cfg = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "timeout": 30,
                "graceful_timeout": 20,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
            }
            for key, value in cfg.items():
                self.cfg.set(key, value)
            self.cfg.set("child_exit", _child_exit)

        def load(self) -> Flask:
            return create_web_app(settings)

    _Server().run()
    return 0


def main(args: argparse.Namespace) -> int:
    settings = get_settings()
    logs.configure(settings, fmt=os.environ.get("OMNI_LOG_FORMAT", "json"))
    settings.require_slack()
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        bolt = create_app(settings)
        logger.info("starting in Socket Mode")
        SocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
        return 0
    logger.info("serving HTTP on %s:%s", args.host, args.port)
    return _run_gunicorn(settings, args.host, args.port, args.workers, args.threads)
