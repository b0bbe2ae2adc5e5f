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
from typing import Any

from flask import Flask, Response, request
from redis.exceptions import RedisError
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from commands import logs
from commands.settings import Settings, get_settings
from commands.sources import AlarmSource, Rejected, with_endpoints
from commands.sources.cloudwatch import CertificateStore

from . import keys, metrics
from .app import create_app
from .jobs import AlarmJob
from .queue import DIAGNOSTICS_QUEUE, FIXES_QUEUE, QueueUnavailable

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
        with_endpoints(
            settings,
            cert_store=cert_store or CertificateStore(settings.sns_cert_dir),
            visit=fetch_subscribe_url or _visit,
        ),
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
        except (ValueError, TypeError):  # a timestamp not a number, a signature not ASCII
            valid = False
        if not valid:
            return _reject("slack", "signature", 401, "signature or timestamp invalid")
        try:
            fresh = redis.set(keys.slack_signature(signature), "1", nx=True, ex=REPLAY_WINDOW_S)
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
        """Ready when Redis answers: alarms and commands are queued even while Slack's API is
        away (``slack`` says how the token check stands)."""
        check = getattr(bolt, "token_check", None)
        slack = check.state if check is not None else "unchecked"
        if deps.enqueuer.ping():
            return {"status": "ready", "redis": "ok", "slack": slack}, 200
        return {"status": "not ready", "redis": "unreachable", "slack": slack}, 503

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
    web: Flask, settings: Settings, deps: Any, sources: dict[str, AlarmSource]
) -> None:
    """One POST endpoint per alarm source that Omni receives over HTTP (``/sns``,
    ``/pagerduty``), all alike: verify, answer control messages, drop duplicates by the
    source's signed key, read the alarm, and enqueue it on RQ, answered 202 at once.  The
    worker posts the headline and runs the triage; a restart of this process loses nothing."""
    redis = deps.enqueuer.redis

    def receive(src: AlarmSource) -> tuple[dict[str, Any], int]:
        body = request.get_data(cache=False)
        try:
            doc = src.verify(body, {k.lower(): v for k, v in request.headers.items()})
            answer = src.control(doc)
        except Rejected as exc:
            return _reject(str(src.endpoint).strip("/"), exc.reason, exc.status, exc.detail)
        if answer is not None:
            return answer
        delivery = src.dedup_key(doc)
        if delivery and not redis.set(
            keys.webhook_delivery(src.name, delivery), "1", nx=True, ex=86400
        ):
            return {"duplicate": delivery}, 200
        alarm = src.parse(doc, deps.triage.catalog().keys())
        if alarm is None:
            return {"ignored": f"not an alarm Omni reads from {src.name}"}, 200
        job = AlarmJob(
            source=src.name, alarm=alarm, headline=src.headline(alarm, doc), delivery=delivery
        )
        try:
            deps.enqueuer.alarm(job)
        except QueueUnavailable:
            if delivery:  # not accepted: let the sender's retry through
                redis.delete(keys.webhook_delivery(src.name, delivery))
            return {"error": "queue unavailable; retry later"}, 503
        return {"accepted": alarm.identity}, 202

    for path, src in sources.items():
        web.add_url_rule(path, f"alarm_{src.name}", lambda src=src: receive(src), methods=["POST"])


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
    logs.configure(settings, fmt=settings.log_format, own=settings.log_level)
    settings.require_slack()
    if not settings.sns_topics:
        logger.warning(
            "OMNI_SNS_TOPICS is empty: /sns refuses every SNS message until the topics whose "
            "alarms Omni may receive are listed"
        )
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        bolt = create_app(settings)
        logger.info("starting in Socket Mode")
        SocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
        return 0
    host, port = args.host or settings.host, args.port or settings.port
    logger.info("serving HTTP on %s:%s", host, port)
    return _run_gunicorn(
        settings,
        host,
        port,
        args.workers or settings.http_workers,
        args.threads or settings.http_threads,
    )
