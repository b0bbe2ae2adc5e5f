"""``omni worker``: an RQ worker on Omni's queues, with RQ's scheduler.

RQ's work loop quits on an error it cannot handle, such as Redis gone at the moment a job
finishes (its heartbeat fails).  Rather than leave the restart to Kubernetes and build every
client again, the process waits for Redis and works on with a new RQ worker; a stop that was
asked for (SIGTERM, SIGINT) ends it, and errors that keep coming (6 in a minute) exit 1 for a
restart that the orchestrator can see.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.serializers import JSONSerializer

from bot.jobs import CALLBACKS, DIAGNOSTICS_QUEUE, FIXES_QUEUE, JOB_FUNCTIONS
from commands import logs

from .health import serve_health
from .runtime import get_runtime, warm

logger = logging.getLogger(__name__)
audit_log = logging.getLogger("omni.audit")
MAINTENANCE_S = 60
MAX_RESTARTS_PER_MINUTE = 5


class ForbiddenJob(Exception):
    """A job that names a function (or callback) that is not one of Omni's jobs."""


def refusal(job: Any) -> str | None:
    """Why a job must not run, or None: only Omni's job functions and callbacks (bot.jobs)."""
    if job.func_name not in JOB_FUNCTIONS:
        return f"{job.func_name!r} is not one of Omni's jobs"
    for kind in ("success", "failure", "stopped"):
        name = getattr(job, f"_{kind}_callback_name", None)
        if name and name not in CALLBACKS:
            return f"its {kind} callback {name!r} is not one of Omni's"
    return None


class OmniWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in this process, where the warm clients are) that runs only
    Omni's own jobs, and remembers a shutdown was asked for (RQ records it only when a job is
    running).

    Anyone who can write to Redis can enqueue a job naming any importable function, and this
    process holds the AWS credentials: a job is checked against :data:`bot.jobs.JOB_FUNCTIONS`
    (and its callbacks against :data:`bot.jobs.CALLBACKS`) before anything is imported for it.
    A refused job fails with the reason, its callbacks dropped, and an audit line is logged.
    """

    shutdown_requested = False

    def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
        reason = refusal(job)
        if reason is None:
            return bool(super().perform_job(job, queue, execution))
        audit_log.warning("refused job %s from queue %s: %s", job.id, queue.name, reason)
        for kind in ("success", "failure", "stopped"):
            setattr(job, f"_{kind}_callback_name", None)
            setattr(job, f"_{kind}_callback", None)
        try:
            raise ForbiddenJob(reason)
        except ForbiddenJob:
            self._finalize_failure(job, queue, execution, sys.exc_info())
        return False

    def handle_warm_shutdown_request(self) -> None:
        self.shutdown_requested = True
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]


def main(args: argparse.Namespace) -> int:
    runtime = get_runtime()
    logs.configure(
        runtime.settings, fmt=runtime.settings.log_format, own=runtime.settings.log_level
    )
    warm(runtime)
    redis = Redis.from_url(runtime.settings.redis_url.get_secret_value(), health_check_interval=30)
    port = runtime.settings.health_port
    if port:
        try:
            serve_health(redis, port)
        except OSError as exc:
            logger.warning("worker health port %s unavailable: %s", port, exc)

    def make_worker() -> OmniWorker:
        return OmniWorker(
            [FIXES_QUEUE, DIAGNOSTICS_QUEUE],
            connection=redis,
            serializer=JSONSerializer,
            # RQ's maintenance finds jobs abandoned by a killed worker (their thread is told) and
            # restarts a scheduler that died with a Redis outage: every minute, not every ten
            maintenance_interval=MAINTENANCE_S,
        )

    return work(make_worker, redis, burst=getattr(args, "burst", False))


def work(make_worker: Callable[[], OmniWorker], redis: Redis, *, burst: bool = False) -> int:
    """Run RQ workers one after another until a stop is asked for (see the module docstring)."""
    restarts: list[float] = []
    while True:
        worker = make_worker()
        logger.info("worker %s listening on %s, %s", worker.name, FIXES_QUEUE, DIAGNOSTICS_QUEUE)
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
        except RedisError as exc:  # RQ's own clean-up met the outage too
            logger.warning("worker %s stopped with Redis failing: %s", worker.name, exc)
        if burst or worker.shutdown_requested:
            return 0
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 60] + [now]
        if len(restarts) > MAX_RESTARTS_PER_MINUTE:
            logger.error("RQ stopped on errors %d times in a minute: exiting", len(restarts))
            return 1
        logger.warning("RQ stopped on an error (logged above); working again once Redis answers")
        try:
            _wait_for_redis(redis)
        except StopRequested:  # RQ's signal handlers are still installed: SIGTERM while waiting
            return 0


def _wait_for_redis(redis: Redis, longest_s: float = 10.0) -> None:
    delay = 0.5
    while True:
        try:
            if redis.ping():
                return
        except RedisError as exc:
            logger.info("waiting for Redis (%s); next try in %.1f s", type(exc).__name__, delay)
        time.sleep(delay)
        delay = min(delay * 2, longest_s)
