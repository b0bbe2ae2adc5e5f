"""The incident timeline: what Omni saw and did in one thread, ready for the postmortem.

Every step Omni takes in a thread is one entry of a Redis stream keyed by the thread
(``omni:timeline:{channel}:{thread_ts}``, kept 90 days): the alarm received, the triage or
diagnosis started and finished, each finding with its status, the plans proposed, every click,
approval and refusal, the fixes with their before and after, the verification, the recovery, a
job that failed.  :func:`markdown` turns it into a table with UTC times and who did what; the
"Timeline" button posts it as a file in the thread, ``omni timeline CHANNEL THREAD_TS`` prints it.

Recording never raises: a timeline is worth less than the incident it describes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from redis import Redis

from commands.text import escape

from . import keys

logger = logging.getLogger(__name__)
TTL_S = 90 * 24 * 3600
OMNI = "Omni"


def key(channel: str, thread_ts: str) -> str:
    return keys.timeline(channel, thread_ts)


def record(
    redis: Redis | None,
    channel: str | None,
    thread_ts: str | None,
    event: str,
    text: str,
    *,
    user: str | None = None,
    **data: Any,
) -> None:
    """Append one entry to a thread's timeline (``user``: a Slack id, or who else acted)."""
    record_many(redis, channel, thread_ts, [entry(event, text, user=user, **data)])


def entry(event: str, text: str, *, user: str | None = None, **data: Any) -> dict[str, str]:
    return {
        "at": f"{time.time():.3f}",
        "event": event,
        "user": user or OMNI,
        "text": text,
        "data": json.dumps(data, default=str, ensure_ascii=False) if data else "",
    }


def record_many(
    redis: Redis | None, channel: str | None, thread_ts: str | None, entries: list[dict[str, str]]
) -> None:
    """Append entries (see :func:`entry`) in one round trip."""
    if redis is None or not channel or not thread_ts or not entries:
        return
    try:
        pipe = redis.pipeline(transaction=False)
        for e in entries:
            pipe.xadd(key(channel, thread_ts), e)  # type: ignore[arg-type]
        pipe.expire(key(channel, thread_ts), TTL_S)
        pipe.execute()
    except Exception as exc:
        logger.warning(
            "timeline entries lost (%s): %s",
            type(exc).__name__,
            ", ".join(e["event"] for e in entries),
        )


def read(redis: Redis, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    rows: Any = redis.xrange(key(channel, thread_ts), min="-", max="+")
    out = []
    for _, fields in rows:
        raw = {_s(k): _s(v) for k, v in fields.items()}
        at = float(raw["at"])
        entry: dict[str, Any] = {
            **raw,
            "at": at,
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)),
            "data": json.loads(raw["data"]) if raw.get("data") else {},
        }
        out.append(entry)
    return sorted(out, key=lambda e: e["at"])  # stream order is arrival order; keep time order


def _who(user: str) -> str:
    if user[:1] in {"U", "W"} and user[1:].isalnum():
        return f"<@{user}>"
    return escape(user).replace("|", "\\|")


def markdown(entries: list[dict[str, Any]], channel: str, thread_ts: str) -> str:
    try:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(thread_ts)))
    except ValueError:
        started = thread_ts
    lines = [
        f"# Incident timeline: {channel}, thread of {started}",
        "",
        "| time (UTC) | who | what |",
        "|---|---|---|",
    ]
    for e in entries:
        # entries hold the text as it was (alarm names, log lines): made inert here, once
        text = escape(e["text"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {e['time']} | {_who(str(e['user']))} | {text} |")
    if not entries:
        lines.append("| | | Omni recorded nothing in this thread. |")
    lines += ["", f"_{len(entries)} entries recorded by Omni._", ""]
    return "\n".join(lines)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def main(args: argparse.Namespace) -> int:
    from commands.settings import get_settings

    redis = Redis.from_url(get_settings().redis_url.get_secret_value(), socket_timeout=5)
    entries = read(redis, args.channel, args.thread_ts)
    if args.format == "json":
        print(json.dumps(entries, indent=2))
    else:
        sys.stdout.write(markdown(entries, args.channel, args.thread_ts))
    if not entries:
        print(f"omni: no timeline for {args.channel} {args.thread_ts}", file=sys.stderr)
        return 1
    return 0
