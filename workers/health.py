"""The worker's health port: ``/healthz`` (alive), ``/readyz`` (Redis reachable), ``/metrics``."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from redis import Redis

from bot import metrics
from bot.queue import DIAGNOSTICS_QUEUE, FIXES_QUEUE

logger = logging.getLogger(__name__)


def serve_health(redis: Redis, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            status, body, ctype = 404, b"not found\n", "text/plain"
            if self.path == "/healthz":
                status, body = 200, b'{"status": "ok"}'
                ctype = "application/json"
            elif self.path == "/readyz":
                try:
                    redis.ping()
                    status, body = 200, b'{"status": "ready", "redis": "ok"}'
                except Exception:
                    status, body = 503, b'{"status": "not ready", "redis": "unreachable"}'
                ctype = "application/json"
            elif self.path == "/metrics":
                body, ctype = metrics.exposition(redis, (DIAGNOSTICS_QUEUE, FIXES_QUEUE))
                status = 200
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="omni-health", daemon=True).start()
    logger.info("worker health on :%s (/healthz, /readyz, /metrics)", port)
    return server
