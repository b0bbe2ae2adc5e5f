"""Prometheus metrics for both processes (``/metrics`` on the bot and on the worker's health port).

``omni serve`` runs several gunicorn processes, so metrics use prometheus_client's multiprocess
mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (``omni serve`` sets it).  Queue depth and the age
of the oldest queued job are read from Redis at scrape time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ACK_SECONDS = Histogram(
    "omni_ack_seconds",
    "Time to answer a Slack request",
    ["kind"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0),
)
REJECTED = Counter("omni_requests_rejected_total", "Requests refused", ["endpoint", "reason"])
ALARMS = Counter("omni_alarms_total", "Alarm posts and webhooks by outcome", ["outcome"])
JOBS = Counter(
    "omni_jobs_total", "Jobs by kind, runbook and outcome", ["kind", "runbook", "outcome"]
)
JOB_SECONDS = Histogram(
    "omni_job_seconds",
    "Job durations",
    ["kind", "runbook"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120),
)
SLACK_RATELIMITED = Counter(
    "omni_slack_ratelimited_total", "Slack answers 429 (retried after Retry-After)"
)
AWS_ERRORS = Counter(
    "omni_aws_errors_total", "AWS calls that failed after retries", ["service", "code"]
)
AWS_THROTTLES = Counter(
    "omni_aws_throttles_total", "AWS throttling answers (each attempt)", ["service"]
)
FIXES = Counter("omni_fixes_total", "Fixes by outcome", ["fix", "outcome"])


class QueueCollector(Collector):
    """Depth and oldest-job age of Omni's RQ queues, read from Redis when scraped."""

    def __init__(self, redis: Any, queues: tuple[str, ...]) -> None:
        self.redis = redis
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("omni_queue_depth", "Jobs waiting in the queue", labels=["queue"])
        age = GaugeMetricFamily(
            "omni_queue_oldest_job_age_seconds", "Age of the oldest waiting job", labels=["queue"]
        )
        for name in self.queues:
            try:
                key = f"rq:queue:{name}"
                depth.add_metric([name], float(self.redis.llen(key)))
                oldest = self.redis.lindex(key, 0)
                enqueued = (
                    self.redis.hget(f"rq:job:{oldest.decode()}", "enqueued_at") if oldest else None
                )
                age.add_metric([name], _age(enqueued))
            except Exception:  # a scrape never fails because Redis is away
                continue
        yield depth
        yield age


def _age(enqueued: bytes | None) -> float:
    if not enqueued:
        return 0.0
    from datetime import datetime

    try:
        then = datetime.fromisoformat(enqueued.decode().replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, time.time() - then.timestamp())


def exposition(redis: Any = None, queues: tuple[str, ...] = ()) -> tuple[bytes, str]:
    """The metrics page: every process's metrics (multiprocess mode) plus the queue gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    body = generate_latest(registry)
    if redis is not None and queues:
        extra = CollectorRegistry()
        extra.register(QueueCollector(redis, queues))
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST


GRAPHS = Counter("omni_graphs_total", "Metric graphs posted in threads, by outcome", ["outcome"])
SLACK_REDELIVERIES = Counter(
    "omni_slack_redeliveries_total", "Findings kept for a later delivery because Slack was down"
)
