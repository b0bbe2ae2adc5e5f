"""The audit trail: a Redis stream kept ``OMNI_AUDIT_RETENTION_DAYS``, mirrored to
``OMNI_AUDIT_CHANNEL``.

Every proposal, click, refusal, approval, execution and verification is one record: time,
Slack user, plan, fix id, parameters hash, outcome.  ``omni audit`` and ``/omni audit`` list it.
Each write trims the stream by age (``XADD … MINID``, exact: a few records a day age out, so the
trim is cheap): records older than the retention go, never a newer one, so a listing inside the
retention stays exact.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from typing import Any

from redis import Redis
from slack_sdk import WebClient

from commands.text import escape, mention

from . import keys

logger = logging.getLogger(__name__)
STREAM = keys.AUDIT


class Audit:
    def __init__(
        self,
        redis: Redis,
        client: WebClient | None = None,
        channel: str | None = None,
        retention_days: int = 365,
    ) -> None:
        self.redis = redis
        self.client = client
        self.channel = channel
        self.retention_s = retention_days * 86400

    def record(
        self, event: str, *, user: str | None, plan: Any = None, outcome: str, **extra: Any
    ) -> None:
        entry = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "event": event,
            "user": user or "-",
            "plan": getattr(plan, "id", "-"),
            "fix": getattr(plan, "fix_id", extra.pop("fix", "-")),
            "params_hash": getattr(plan, "params_hash", "-"),
            "outcome": outcome,
            "detail": json.dumps(extra, default=str) if extra else "",
        }
        try:
            oldest = int((time.time() - self.retention_s) * 1000)
            self.redis.xadd(STREAM, entry, minid=f"{oldest}-0", approximate=False)  # type: ignore[arg-type]
        except Exception:
            logger.exception("audit record lost: %s", entry)
        logger.info(
            "audit %s user=%s plan=%s fix=%s outcome=%s",
            event,
            entry["user"],
            entry["plan"],
            entry["fix"],
            outcome,
        )
        self._timeline(event, entry, plan, extra)
        if self.client is not None and self.channel:
            try:
                self.client.chat_postMessage(
                    channel=self.channel,
                    text=f":scroll: {entry['at']} *{event}* by {mention(entry['user'])}: "
                    f"`{escape(entry['fix'])}` plan `{escape(entry['plan'])}` → {escape(outcome)}",
                )
            except Exception as exc:
                logger.warning("audit mirror failed: %s", exc)

    def _timeline(
        self, event: str, entry: dict[str, str], plan: Any, extra: dict[str, Any]
    ) -> None:
        """The same step in its thread's incident timeline."""
        from . import timeline

        if plan is None:
            return
        target = getattr(plan, "target", "")
        text = f"{event.capitalize()} `{entry['fix']}` on {target}"
        if entry["outcome"] != event:
            text += f": {entry['outcome']}"
        if "before" in extra or "after" in extra:
            text += (
                f" (before {_compact(extra.get('before'))} → after {_compact(extra.get('after'))})"
            )
        timeline.record(
            self.redis,
            getattr(plan, "channel", None),
            getattr(plan, "thread_ts", None),
            event,
            text,
            user=entry["user"] if entry["user"] != "-" else None,
            plan=entry["plan"],
        )


def _compact(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))[:300]


def read(redis: Redis, since_s: float) -> list[dict[str, str]]:
    start = int((time.time() - since_s) * 1000)
    rows: Any = redis.xrange(STREAM, min=f"{start}-0", max="+")
    return [{_s(k): _s(v) for k, v in fields.items()} | {"id": _s(rid)} for rid, fields in rows]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_since(text: str) -> float:
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not m:
        raise ValueError(f"--since takes a duration like 30m, 24h or 7d, not {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def main(args: argparse.Namespace) -> int:
    from commands.settings import get_settings

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"omni: {exc}", file=sys.stderr)
        return 2
    redis = Redis.from_url(get_settings().redis_url.get_secret_value(), socket_timeout=5)
    rows = read(redis, since)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['at']}  {r['event']:<12} {r['user']:<12} {r['fix']:<32} {r['plan']:<26} {r['outcome']}"
            )
        if not rows:
            print(f"no audit records in the last {args.since}")
    return 0
