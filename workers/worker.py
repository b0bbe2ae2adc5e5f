"""``omni worker``: an RQ worker on Omni's queues, with RQ's scheduler."""

from __future__ import annotations

import argparse
import logging
import os

from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from bot.queue import DIAGNOSTICS_QUEUE, FIXES_QUEUE
from commands import logs

from .health import serve_health
from .runtime import get_runtime, warm

logger = logging.getLogger(__name__)
MAINTENANCE_S = 60


def main(args: argparse.Namespace) -> int:
    runtime = get_runtime()
    logs.configure(runtime.settings, fmt=os.environ.get("OMNI_LOG_FORMAT", "json"))
    warm(runtime)
    redis = Redis.from_url(runtime.settings.redis_url.get_secret_value(), health_check_interval=30)
    port = int(os.environ.get("OMNI_HEALTH_PORT", "9000"))
    if port:
        try:
            serve_health(redis, port)
        except OSError as exc:
            logger.warning("worker health port %s unavailable: %s", port, exc)
    worker = SimpleWorker(
        [FIXES_QUEUE, DIAGNOSTICS_QUEUE],
        connection=redis,
        serializer=JSONSerializer,
        # RQ's maintenance finds jobs abandoned by a killed worker (their thread is told) and
        # restarts a scheduler that died with a Redis outage: every minute, not every ten
        maintenance_interval=MAINTENANCE_S,
    )
    logger.info("worker %s listening on %s, %s", worker.name, FIXES_QUEUE, DIAGNOSTICS_QUEUE)
    worker.work(burst=getattr(args, "burst", False), with_scheduler=True, logging_level="INFO")
    return 0
