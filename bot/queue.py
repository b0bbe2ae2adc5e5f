"""Enqueueing work for the workers: RQ, JSON serializer, jobs by dotted path (:mod:`bot.jobs`).

The bot never imports ``workers``: a job names its function by dotted path and carries one
argument, ``job``, the JSON of its model.
"""

from __future__ import annotations

import logging
import uuid

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.serializers import JSONSerializer

from commands.settings import Settings

from .jobs import (
    DIAGNOSTICS_QUEUE,
    FIXES_QUEUE,
    ON_FAILURE,
    ON_FIX_FAILURE,
    RECEIVE_ALARM,
    RUN_DIAGNOSIS,
    RUN_FIX,
    RUN_TRIAGE,
    AlarmJob,
    DiagnoseJob,
    FixJob,
    Job,
    TriageJob,
)

logger = logging.getLogger(__name__)

__all__ = ["DIAGNOSTICS_QUEUE", "FIXES_QUEUE", "Enqueuer", "QueueUnavailable", "connect"]


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

    def diagnose(self, job: DiagnoseJob) -> str:
        return self._enqueue(RUN_DIAGNOSIS, "diag", job, f"diagnose {job.area} for {job.user}")

    def triage(self, job: TriageJob) -> str:
        described = f"triage {','.join(job.runbooks)} for {job.alarm.name}"
        return self._enqueue(RUN_TRIAGE, "triage", job, described)

    def alarm(self, job: AlarmJob) -> str:
        return self._enqueue(RECEIVE_ALARM, "alarm", job, f"{job.source} alarm {job.alarm.name}")

    def _enqueue(self, func: str, prefix: str, job: Job, description: str) -> str:
        """Read-only jobs: not retried (cheap to re-run; a retry would post twice); a failure
        tells the thread through the on_failure callback."""
        job_id = f"{prefix}-{uuid.uuid4().hex[:16]}"
        try:
            # one Redis round trip: RQ would otherwise make two (the queue's registration, then
            # the job), and this runs inside the Slack ack
            with self.redis.pipeline() as pipe:
                self.diagnostics.enqueue(
                    func,
                    kwargs={"job": job.payload()},
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
        logger.info("enqueued %s %s", job_id, description)
        return job_id

    def fix(self, plan_id: str, approver: str) -> str:
        """Fixes have their own queue; the plan's state machine makes a second enqueue harmless."""
        job = FixJob(plan_id=plan_id, approver=approver)
        try:
            self.fixes.enqueue(
                RUN_FIX,
                kwargs={"job": job.payload()},
                job_id=f"fix-{plan_id}",
                job_timeout=self.settings.job_timeout_s,
                result_ttl=7 * 24 * 3600,
                failure_ttl=7 * 24 * 3600,
                on_failure=Callback(ON_FIX_FAILURE),
                description=f"fix plan {plan_id} approved by {approver}",
            )
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return f"fix-{plan_id}"
