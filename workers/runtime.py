"""What a worker process keeps between jobs: settings, the boto3 client pool, the Slack client.

RQ's default worker forks a work-horse per job, which would rebuild every boto3 client
(~90 ms each) for every job.  Omni's worker runs jobs in its own process (``SimpleWorker``)
so the pool built here, warmed at start, serves every job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from redis import Redis
from slack_sdk import WebClient

from bot.audit import Audit
from bot.plans import PlanStore, signing_key
from bot.slack_client import make_web_client
from commands.aws import ClientPool
from commands.credentials import Sessions
from commands.errors import THROTTLE_CODES
from commands.registry import runbook_names, services_for
from commands.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def warm_services() -> list[str]:
    """Every client a job may need: the services the runbooks declare (fixes act on the same
    ones), and S3 for Terraform outputs kept in a state object."""
    return [*services_for(runbook_names()), "s3"]


@dataclass
class Runtime:
    settings: Settings
    pool: ClientPool
    slack: WebClient
    redis: Redis | None = None
    plans: PlanStore | None = None
    audit: Audit | None = None
    _fix_pool: ClientPool | None = None
    _sessions: Sessions | None = None
    _pools: dict[tuple[str, str | None, bool], ClientPool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _triage: Any = None

    def fix_pool(self) -> ClientPool:
        """Clients for fixes with the worker's own credentials: retries off (no blind retry of
        a call that changes AWS), built once per process like the diagnostic clients."""
        if self._fix_pool is None:
            self._fix_pool = ClientPool(self.pool.session, retry_mode="standard", max_attempts=1)
        return self._fix_pool

    def triage(self) -> Any:
        """The bot's alarm pipeline (dedup, routing, storms), for alarms received over HTTP."""
        from bot.queue import Enqueuer
        from bot.triage import Triage

        if self._triage is None:
            assert self.redis is not None
            self._triage = Triage(
                self.settings, self.redis, Enqueuer(self.redis, self.settings), self.slack
            )
        return self._triage

    @property
    def sessions(self) -> Sessions:
        if self._sessions is None:
            self._sessions = Sessions(
                self.pool.session,
                on_session=lambda s: s.events.register("needs-retry", _count_throttles),
            )
        return self._sessions

    def pool_for(self, env: Settings) -> ClientPool:
        """Diagnostic clients for one environment: its role's session, reused across jobs."""
        if not env.role_arn:
            return self.pool
        return self._cached_pool(env.role_arn, None, env.region, fixes=False)

    def fix_pool_for(self, env: Settings, approver: str) -> ClientPool:
        """Fix clients for one environment: its fix role with the approver as source identity
        (or its diagnostics role, or the worker's own credentials), retries off."""
        role = env.fix_role_arn or env.role_arn
        if not role:
            return self.fix_pool()
        identity = f"slack-{approver}" if env.fix_role_arn else None
        return self._cached_pool(role, identity, env.region, fixes=True)

    def _cached_pool(
        self, role: str, identity: str | None, region: str, *, fixes: bool
    ) -> ClientPool:
        key = (role, identity, fixes)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                session = self.sessions.for_role(
                    role,
                    region=region,
                    source_identity=identity,
                    name="omni-fixes" if fixes else "omni-diagnostics",
                )
                s = self.settings
                pool = (
                    ClientPool(session, retry_mode="standard", max_attempts=1)
                    if fixes
                    else ClientPool(
                        session,
                        retry_mode=s.aws_retry_mode,
                        max_attempts=s.aws_max_attempts,
                        max_pool_connections=max(s.aws_max_concurrency * 2, 10),
                    )
                )
                self._pools[key] = pool
        return pool

    @classmethod
    def with_redis(
        cls, settings: Settings, pool: ClientPool, slack: WebClient, redis: Redis
    ) -> Runtime:
        key = signing_key(settings)
        plans = PlanStore(redis, key, settings.plan_ttl_s) if key else None
        return cls(
            settings,
            pool,
            slack,
            redis,
            plans,
            Audit(redis, slack, settings.audit_channel, settings.audit_retention_days),
        )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                settings = get_settings()
                session = boto3.session.Session()
                session.events.register("needs-retry", _count_throttles)
                pool = ClientPool(
                    session,
                    retry_mode=settings.aws_retry_mode,
                    max_attempts=settings.aws_max_attempts,
                    max_pool_connections=max(settings.aws_max_concurrency * 2, 10),
                )
                redis = Redis.from_url(
                    settings.redis_url.get_secret_value(),
                    socket_timeout=2,
                    socket_connect_timeout=2,
                )
                slack = make_web_client(settings, redis=redis)
                _runtime = Runtime.with_redis(settings, pool, slack, redis)
    return _runtime


def _count_throttles(response: Any = None, operation: Any = None, **_: Any) -> None:
    """botocore asks each attempt whether to retry: count throttling answers (never decides)."""
    if not response:
        return
    code = str((response[1] or {}).get("Error", {}).get("Code", ""))
    if code in THROTTLE_CODES:
        from bot import metrics

        service = getattr(getattr(operation, "service_model", None), "service_name", "?")
        metrics.AWS_THROTTLES.labels(service).inc()


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime (the demo and tests build their own)."""
    global _runtime
    _runtime = runtime


def warm(runtime: Runtime) -> None:
    """Build every environment's clients ahead of the first job (roles are assumed lazily, at
    the first call, so a broken role fails that job's checks, not the worker's start)."""
    for name in runtime.settings.environment_names():
        env = runtime.settings.for_environment(name)
        pool = runtime.pool_for(env)
        pool.warm(warm_services(), env.region)
    if runtime.settings.graphs:  # the first graph should not pay for matplotlib's import
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates
        import matplotlib.figure
    logger.info("warmed %d boto3 clients", runtime.pool.created)
