"""``omni serve``: the Bolt app behind gunicorn (HTTP), or over Socket Mode.

HTTP routes: ``/slack/events`` (commands, events, interactivity), ``/healthz`` (alive),
``/readyz`` (Redis reachable).  A request that fails Slack's signature check gets Bolt's 401
and an audit line in the log here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from flask import Flask, Response, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

from commands.settings import Settings, get_settings

from .app import create_app

logger = logging.getLogger(__name__)
audit_log = logging.getLogger("omni.audit")


def create_web_app(settings: Settings, bolt_app: App | None = None) -> Flask:
    bolt = bolt_app or create_app(settings)
    handler = SlackRequestHandler(bolt)
    web = Flask("omni")
    deps = bolt.deps  # type: ignore[attr-defined]

    @web.post("/slack/events")
    def slack_events() -> Response:
        response: Response = handler.handle(request)
        if response.status_code in (401, 403):
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

    @web.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        if deps.enqueuer.ping():
            return {"status": "ready", "redis": "ok"}, 200
        return {"status": "not ready", "redis": "unreachable"}, 503

    return web


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

        def load(self) -> Flask:
            return create_web_app(settings)

    _Server().run()
    return 0


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    settings = get_settings()
    settings.require_slack()
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        bolt = create_app(settings)
        logger.info("starting in Socket Mode")
        SocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
        return 0
    logger.info("serving HTTP on %s:%s", args.host, args.port)
    return _run_gunicorn(settings, args.host, args.port, args.workers, args.threads)
