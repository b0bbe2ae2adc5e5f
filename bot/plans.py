"""Plans: a proposed fix stored in Redis, referenced by a signed button value, run once.

States: proposed → (awaiting_second →) approved → running → succeeded | failed, and expired or
refused on the way.  Every transition is a compare-and-set under WATCH, so double clicks,
concurrent clicks, Slack retries and several bot replicas give one execution.  The button's
value is ``<plan id>.<HMAC of id and parameter hash>``: it carries no parameters, and an edited
or forged value matches no plan.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from pydantic import BaseModel, Field
from redis import Redis, WatchError

from commands.models import Remediation, Risk

from . import keys

KEEP_AFTER_EXPIRY_S = 7 * 24 * 3600


class Plan(BaseModel):
    id: str
    fix_id: str
    params: dict[str, Any]
    params_hash: str
    target: str
    risk: Risk
    required_role: str
    check: str
    finding: str
    channel: str
    thread_ts: str
    environment: str
    created_at: float
    expires_at: float
    state: str = "proposed"
    approvals: list[str] = Field(default_factory=list)
    message_ts: str | None = None
    outcome: str | None = None

    @property
    def expired(self) -> bool:
        return time.time() > self.expires_at


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def plan_key(secret: str) -> bytes:
    """The signing key for button values, derived from a secret every Omni process has."""
    return hashlib.sha256(b"omni-plan-key:" + secret.encode()).digest()


class PlanStore:
    def __init__(self, redis: Redis, key: bytes, ttl_s: int = 1800) -> None:
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s

    def propose(
        self,
        r: Remediation,
        *,
        check: str,
        finding: str,
        channel: str,
        thread_ts: str,
        environment: str,
    ) -> Plan:
        now = time.time()
        target = r.target or r.id
        plan = Plan(
            id=secrets.token_hex(12),
            fix_id=r.id,
            params=dict(r.params),
            params_hash=params_hash(dict(r.params)),
            target=target,
            risk=r.risk,
            required_role=r.role,
            check=check,
            finding=finding,
            channel=channel,
            thread_ts=thread_ts,
            environment=environment,
            created_at=now,
            expires_at=now + self.ttl_s,
        )
        self.redis.set(
            self._key(plan.id), plan.model_dump_json(), ex=self.ttl_s + KEEP_AFTER_EXPIRY_S
        )
        return plan

    def ref(self, plan: Plan) -> str:
        return f"{plan.id}.{self._mac(plan.id, plan.params_hash)}"

    def resolve(self, value: str) -> Plan | None:
        """The plan a button value references, or None when the value is forged or edited."""
        plan_id, _, mac = (value or "").partition(".")
        if not plan_id or not mac:
            return None
        plan = self.get(plan_id)
        if plan is None or not hmac.compare_digest(mac, self._mac(plan.id, plan.params_hash)):
            return None
        if params_hash(plan.params) != plan.params_hash:  # the stored parameters were changed
            return None
        return plan

    def get(self, plan_id: str) -> Plan | None:
        raw = self.redis.get(self._key(plan_id))
        return Plan.model_validate_json(raw) if raw else None

    def transition(self, plan_id: str, expect: set[str], to: str, **update: Any) -> Plan | None:
        """Compare-and-set: move the plan to ``to`` only from one of ``expect``; None otherwise."""
        key = self._key(plan_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if not raw:
                        return None
                    plan = Plan.model_validate_json(raw)
                    if plan.state not in expect:
                        pipe.unwatch()
                        return None
                    changed = plan.model_copy(update={"state": to, **update})
                    pipe.multi()
                    pipe.set(key, changed.model_dump_json(), keepttl=True)
                    pipe.execute()
                    return changed
                except WatchError:
                    continue

    def _mac(self, plan_id: str, digest: str) -> str:
        return hmac.new(self.key, f"{plan_id}:{digest}".encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _key(plan_id: str) -> str:
        return keys.plan(plan_id)
