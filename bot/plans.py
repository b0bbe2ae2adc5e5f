"""Plans: a proposed fix stored in Redis, referenced by a signed button value, run once.

States: proposed → (awaiting_second →) approved → running → succeeded | failed, and expired or
refused on the way.  Every transition is a compare-and-set under WATCH, so double clicks,
concurrent clicks, Slack retries and several bot replicas give one execution.  The button's
value is ``<plan id>.<HMAC of id and parameter hash>``: it carries no parameters, and an edited
or forged value matches no plan.

Redis is not trusted either: every stored plan carries a *seal*, an HMAC over what decides the
fix (fix id, parameters, target, risk, role, environment, channel, thread, messages, state,
approvals, expiry), made with a key Redis never sees (``OMNI_PLAN_KEY``, or one derived from the
bot token).  A plan written or edited by anyone who only reaches Redis does not verify: the bot
resolves no button to it, a transition does not move it, and the worker refuses to run it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

from pydantic import BaseModel, Field
from redis import Redis, WatchError

from commands.models import Remediation, Risk

from . import keys

logger = logging.getLogger(__name__)

KEEP_AFTER_EXPIRY_S = 7 * 24 * 3600
# what the seal covers: everything that decides what runs, where, and who allowed it
SEALED = (
    "id",
    "fix_id",
    "params",
    "params_hash",
    "target",
    "risk",
    "required_role",
    "environment",
    "channel",
    "thread_ts",
    "messages",
    "expires_at",
    "state",
    "approvals",
)


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
    messages: list[str] = Field(default_factory=list)  # the ts of each message with its button
    outcome: str | None = None
    seal: str = ""

    @property
    def expired(self) -> bool:
        return time.time() > self.expires_at

    @property
    def approvals_needed(self) -> int:
        return 2 if self.risk is Risk.HIGH else 1

    def posted_in(self, channel: str, message_ts: str | None, thread_ts: str | None) -> bool:
        """Whether a click on a message there is a click on this plan's button: the plan's
        channel, and one of the messages it was posted in (the plan's thread, when those were
        not recorded: a delivery retried after Slack was down)."""
        if channel != self.channel:
            return False
        if self.messages:
            return message_ts in self.messages
        return (thread_ts or message_ts) == self.thread_ts


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def plan_key(secret: str) -> bytes:
    """The signing key for button values, derived from a secret every Omni process has."""
    return hashlib.sha256(b"omni-plan-key:" + secret.encode()).digest()


def signing_key(settings: Any) -> bytes | None:
    """``OMNI_PLAN_KEY`` when set, else derived from the bot token (both processes have it);
    None when neither is configured (no plans can be made or run)."""
    secret = settings.plan_key or settings.slack_bot_token
    return plan_key(secret.get_secret_value()) if secret is not None else None


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
        plan = self._sealed(plan)
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
        if not self.sealed(plan):  # it covers the parameters and their hash
            logger.warning("plan %s in Redis does not verify: changed outside Omni", plan.id)
            return None  # the stored plan was written or changed by someone without the key
        return plan

    def sealed(self, plan: Plan) -> bool:
        """Whether ``plan`` is as Omni last wrote it (its seal verifies)."""
        return bool(plan.seal) and hmac.compare_digest(plan.seal, self._seal_of(plan))

    def record_messages(self, posted: dict[str, list[str]]) -> None:
        """Bind each plan to the messages its button was posted in (plan id → message ts)."""
        for plan_id, messages in posted.items():
            self._update(plan_id, None, lambda p, m=messages: {"messages": [*p.messages, *m]})

    def get(self, plan_id: str) -> Plan | None:
        raw = self.redis.get(self._key(plan_id))
        return Plan.model_validate_json(raw) if raw else None

    def transition(self, plan_id: str, expect: set[str], to: str, **update: Any) -> Plan | None:
        """Compare-and-set: move the plan to ``to`` only from one of ``expect``; None otherwise
        (and None for a plan whose seal does not verify: it is never moved)."""
        return self._update(plan_id, expect, lambda _: {"state": to, **update})

    def _update(self, plan_id: str, expect: set[str] | None, change: Any) -> Plan | None:
        key = self._key(plan_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if not raw:
                        return None
                    plan = Plan.model_validate_json(raw)
                    if (expect is not None and plan.state not in expect) or not self.sealed(plan):
                        pipe.unwatch()
                        return None
                    changed = self._sealed(plan.model_copy(update=change(plan)))
                    pipe.multi()
                    pipe.set(key, changed.model_dump_json(), keepttl=True)
                    pipe.execute()
                    return changed
                except WatchError:
                    continue

    def _sealed(self, plan: Plan) -> Plan:
        return plan.model_copy(update={"seal": self._seal_of(plan)})

    def _seal_of(self, plan: Plan) -> str:
        doc = plan.model_dump(mode="json", include=set(SEALED))
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self.key, b"omni-plan-seal:" + body.encode(), hashlib.sha256).hexdigest()

    def _mac(self, plan_id: str, digest: str) -> str:
        return hmac.new(self.key, f"{plan_id}:{digest}".encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _key(plan_id: str) -> str:
        return keys.plan(plan_id)
