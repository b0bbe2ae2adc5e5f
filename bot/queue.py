"""Enqueueing work for the workers: RQ, JSON serializer, by dotted path.

The bot never imports ``workers``: jobs are named by their dotted path.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.serializers import JSONSerializer

from commands.settings import Settings

logger = logging.getLogger(__name__)

DIAGNOSTICS_QUEUE = "omni-diagnostics"
FIXES_QUEUE = "omni-fixes"
RUN_DIAGNOSIS = "workers.jobs.run_diagnosis"
RUN_TRIAGE = "workers.jobs.run_triage"
RUN_FIX = "workers.fixes.run_fix"
ON_FAILURE = "workers.jobs.on_job_failure"


class QueueUnavailable(Exception):
    """Redis could not be reached in time; nothing was enqueued."""


def connect(settings: Settings, *, timeout_s: float = 0.5) -> Redis:
    """A Redis connection with short timeouts: the Slack path never waits long on Redis."""
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )


class Enqueuer:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.diagnostics = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
        self.fixes = Queue(FIXES_QUEUE, connection=redis, serializer=JSONSerializer)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except RedisError:
            return False

    def diagnose(self, request: dict[str, Any]) -> str:
        description = f"diagnose {request.get('area')} for {request.get('user')}"
        return self._enqueue_diagnostic(RUN_DIAGNOSIS, "diag", request, description)

    def triage(self, request: dict[str, Any]) -> str:
        alarm = (request.get("alarm") or {}).get("name")
        description = f"triage {','.join(request.get('runbooks', []))} for {alarm}"
        return self._enqueue_diagnostic(RUN_TRIAGE, "triage", request, description)

    def _enqueue_diagnostic(
        self, func: str, prefix: str, request: dict[str, Any], description: str
    ) -> str:
        """Read-only jobs: not retried (cheap to re-run; a retry would post twice); a failure
        tells the thread through the on_failure callback."""
        job_id = f"{prefix}-{uuid.uuid4().hex[:16]}"
        try:
            # one Redis round trip: RQ would otherwise make two (the queue's registration, then
            # the job), and this runs inside the Slack ack
            with self.redis.pipeline() as pipe:
                self.diagnostics.enqueue(
                    func,
                    kwargs={"request": request},
                    job_id=job_id,
                    job_timeout=self.settings.job_timeout_s,
                    result_ttl=3600,
                    failure_ttl=7 * 24 * 3600,
                    on_failure=Callback(ON_FAILURE),
                    description=description,
                    pipeline=pipe,
                )
                pipe.execute()
        except RedisError as exc:
            logger.warning("enqueue failed: %s", type(exc).__name__)
            raise QueueUnavailable(str(exc)) from exc
        logger.info(
            "enqueued %s channel=%s thread=%s",
            job_id,
            request.get("channel"),
            request.get("thread_ts"),
        )
        return job_id

    def fix(self, plan_id: str, approver: str) -> str:
        """Fixes have their own queue; the plan's state machine makes a second enqueue harmless."""
        try:
            self.fixes.enqueue(
                RUN_FIX,
                kwargs={"plan_id": plan_id, "approver": approver},
                job_id=f"fix-{plan_id}",
                job_timeout=self.settings.job_timeout_s,
                result_ttl=7 * 24 * 3600,
                failure_ttl=7 * 24 * 3600,
                on_failure=Callback("workers.fixes.on_fix_failure"),
                description=f"fix plan {plan_id} approved by {approver}",
            )
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return f"fix-{plan_id}"
