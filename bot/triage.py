"""From an alarm to its triage thread: dedup, routing, storms, lifecycle (Redis-backed).

Every alarm, however it arrived (a Slack post, ``/sns``, ``/pagerduty``), goes through
:meth:`Triage.handle`:

* an alarm that recovers (OK, resolved) gets a note in the thread of its original triage;
* the same firing alarm again within ``OMNI_ALARM_DEDUP_S`` gets nothing;
* each runbook runs at most once per environment per ``OMNI_TRIAGE_WINDOW_S``;
* more than ``OMNI_STORM_THRESHOLD`` alarms in a minute in one channel is a storm: one summary
  post in the channel and the runs' results in its thread, instead of a thread per alarm; the
  storm keeps that thread until the channel has been quiet for ``STORM_QUIET_S`` (a storm
  that crosses a minute boundary is still one storm).

State lives in Redis under ``omni:`` so several bot replicas agree and a restart forgets nothing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from commands import environments
from commands.alarm import Alarm
from commands.environments import AlarmEnvironment
from commands.routing import route
from commands.settings import Settings
from commands.text import escape

from . import keys, render, timeline
from .jobs import TriageJob
from .queue import Enqueuer

logger = logging.getLogger(__name__)
THREAD_TTL_S = 7 * 24 * 3600
STORM_QUIET_S = 120


@dataclass
class Outcome:
    action: str  # "triage" | "storm" | "duplicate" | "recovered" | "unrouted" | "ignored"
    runbooks: list[str]
    detail: str = ""


class Triage:
    def __init__(
        self, settings: Settings, redis: Redis, enqueuer: Enqueuer, client: WebClient
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.enqueuer = enqueuer
        self.client = client
        self._routes = settings.routes()
        self._names_cache: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}

    # -- the account's real alarms, cached in Redis by the workers -----------------------------
    def catalog(self, environment: str | None = None) -> dict[str, dict[str, Any]]:
        env = environment or self.settings.default_env
        at, names = self._names_cache.get(env, (0.0, {}))
        if time.monotonic() - at < 60:
            return names
        try:
            raw = self.redis.hgetall(keys.alarm_catalog(env))
            names = {k.decode(): json.loads(v) for k, v in raw.items()}  # type: ignore[union-attr]
        except RedisError:
            return names
        self._names_cache[env] = (time.monotonic(), names)
        return names

    def enrich(self, alarm: Alarm, environment: str | None = None) -> Alarm:
        """Fill the metric from the real alarm of that name, when the post did not carry it."""
        known = self.catalog(environment).get(alarm.name or "")
        if not known:
            return alarm
        return alarm.model_copy(
            update={
                "namespace": alarm.namespace or known.get("namespace"),
                "metric": alarm.metric or known.get("metric"),
                "dimensions": alarm.dimensions or known.get("dimensions") or {},
                "arn": alarm.arn or known.get("arn"),
                "threshold": alarm.threshold
                if alarm.threshold is not None
                else known.get("threshold"),
                "statistic": alarm.statistic or known.get("statistic"),
            }
        )

    # -- the pipeline ------------------------------------------------------------------------
    def environment_of(self, alarm: Alarm, channel: str | None) -> AlarmEnvironment:
        return environments.for_alarm(
            self.settings,
            account=alarm.account,
            region=alarm.region,
            alarm_name=alarm.name,
            channel=channel,
            pagerduty_services=(alarm.service, alarm.service_name),
        )

    def handle(self, alarm: Alarm, channel: str, ts: str) -> Outcome:
        if alarm.identity is None:
            return Outcome("ignored", [], "no alarm identity")
        where = self.environment_of(alarm, channel)
        if where.name is None:
            return self._unknown_account(alarm, channel, ts, where.reason)
        env = where.name
        alarm = self.enrich(alarm, env)
        identity = f"{env}:{alarm.identity}"
        if alarm.recovered:
            return self._recovered(alarm, identity)
        if not self.redis.set(
            keys.alarm_seen(identity), ts, nx=True, ex=self.settings.alarm_dedup_s
        ):
            return Outcome("duplicate", [], identity)
        runbooks = route(alarm, self._routes)
        received = (
            f"Alarm *{alarm.name or alarm.identity}* {alarm.state or ''} received "
            f"({alarm.source}; {env}: {where.reason})"
        )
        if not runbooks:
            self._post(channel, ts, _unrouted_text(alarm))
            timeline.record_many(
                self.redis,
                channel,
                ts,
                [
                    timeline.entry("alarm", received, user=_poster(alarm)),
                    timeline.entry("unrouted", "No routing rule matched: not triaged"),
                ],
            )
            return Outcome("unrouted", [])
        now = time.time()
        minute = int(now // 60)
        storm_key = keys.storm_count(channel, minute)
        count = int(self.redis.incr(storm_key))
        self.redis.expire(storm_key, 180)
        window = int(now // self.settings.triage_window_s)
        claimed = [
            rb
            for rb in runbooks
            if self.redis.set(
                keys.run_claim(env, rb, window), identity, nx=True, ex=self.settings.triage_window_s
            )
        ]
        if count > self.settings.storm_threshold or self.redis.exists(keys.storm_thread(channel)):
            return self._storm(alarm, env, channel, claimed, ts)
        timeline.record(self.redis, channel, ts, "alarm", received, user=_poster(alarm))
        reply = self._post(
            channel, ts, _first_reply(alarm, runbooks, claimed), timeline_button=True
        )
        self.redis.hset(
            keys.alarm_thread(identity),
            mapping={
                "channel": channel,
                "ts": ts,
                "reply_ts": reply or "",
                "runbooks": ",".join(runbooks),
                "name": alarm.name or "",
            },
        )
        self.redis.expire(keys.alarm_thread(identity), THREAD_TTL_S)
        if claimed:
            self.enqueuer.triage(self._request(alarm, env, claimed, channel, ts, reply))
        return Outcome("triage", claimed, f"{len(runbooks) - len(claimed)} already running")

    def _storm(self, alarm: Alarm, env: str, channel: str, claimed: list[str], ts: str) -> Outcome:
        thread_key = keys.storm_thread(channel)
        if self.redis.set(keys.storm_post(channel), "1", nx=True, ex=STORM_QUIET_S):
            storm_ts = self._post(
                channel,
                None,
                f":tornado: *Alarm storm* in this channel: more than {self.settings.storm_threshold} alarms within a minute. "
                "Omni triages each runbook once and posts the results in this thread instead of one thread per alarm.",
            )
            self.redis.set(thread_key, storm_ts or "", ex=STORM_QUIET_S)
        else:  # the storm goes on: it keeps its thread while alarms keep coming
            pipe = self.redis.pipeline(transaction=False)
            pipe.expire(keys.storm_post(channel), STORM_QUIET_S)
            pipe.expire(thread_key, STORM_QUIET_S)
            pipe.execute()
        thread_ts = self._wait_for(thread_key)
        if not thread_ts:
            # the storm post is still waiting for its turn in the channel (posts are paced at
            # one a second) or Slack refused it: the runbooks claimed here must still run, so
            # they run in this alarm's own thread rather than not at all
            logger.warning("storm thread of %s not known: triaging in the alarm's thread", channel)
            thread_ts = ts
        timeline.record(
            self.redis,
            channel,
            thread_ts,
            "alarm",
            f"Alarm *{alarm.name or alarm.identity}* {alarm.state or ''} received during a storm",
            user=_poster(alarm),
        )
        if claimed and thread_ts:
            self.enqueuer.triage(
                self._request(
                    alarm,
                    env,
                    claimed,
                    channel,
                    thread_ts,
                    None,
                    storm_key=f"{channel}:{thread_ts}",
                )
            )
        return Outcome("storm", claimed)

    def _recovered(self, alarm: Alarm, identity: str) -> Outcome:
        raw: dict[Any, Any] = self.redis.hgetall(keys.alarm_thread(identity))
        thread = {_s(k): _s(v) for k, v in raw.items()}
        if not thread:
            return Outcome("ignored", [], "recovery of an alarm Omni did not triage")
        marker = keys.recovered(identity, thread["ts"])
        if not self.redis.set(marker, "1", nx=True, ex=THREAD_TTL_S):
            return Outcome("duplicate", [], "recovery already noted")
        when = alarm.changed_at or time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self._post(
            thread["channel"],
            thread["ts"],
            f":white_check_mark: *{escape(alarm.name or 'The alarm')}* recovered ({escape(alarm.state)}) at {escape(when)}.",
        )
        timeline.record(
            self.redis,
            thread["channel"],
            thread["ts"],
            "recovered",
            f"Alarm *{alarm.name or alarm.identity}* recovered ({alarm.state}) at {when}",
            user=_poster(alarm),
        )
        if thread.get("reply_ts"):
            edited = (
                f":white_check_mark: *{escape(alarm.name)}* recovered ({escape(alarm.state)}); "
                f"triaged: {escape(thread.get('runbooks'))}"
            )
            try:
                self.client.chat_update(
                    channel=thread["channel"],
                    ts=thread["reply_ts"],
                    text=edited,
                    blocks=render.with_timeline_button(edited),
                )
            except SlackApiError as exc:
                logger.warning("could not edit the first reply: %s", exc.response.get("error"))
        self.redis.delete(keys.alarm_seen(identity))
        return Outcome("recovered", [])

    # -- helpers -----------------------------------------------------------------------------
    def _unknown_account(self, alarm: Alarm, channel: str, ts: str, reason: str) -> Outcome:
        """An alarm from an account Omni does not know: say so once, diagnose nothing."""
        if self.redis.set(
            keys.alarm_unknown(str(alarm.identity)), ts, nx=True, ex=self.settings.alarm_dedup_s
        ):
            self._post(
                channel,
                ts or None,
                f":grey_question: *{escape(alarm.name or alarm.identity)}* comes from {escape(reason)}, so I did not "
                "triage it: diagnosing another account's alarm against one of mine would mislead. "
                "Add that account to an environment in Omni's config (`environments`).",
            )
        timeline.record(
            self.redis,
            channel,
            ts,
            "unknown-account",
            f"Alarm *{alarm.name or alarm.identity}* from {reason}: not triaged",
            user=_poster(alarm),
        )
        return Outcome("unknown-account", [], reason)

    def _request(
        self,
        alarm: Alarm,
        env: str,
        runbooks: list[str],
        channel: str,
        thread_ts: str,
        reply_ts: str | None,
        storm_key: str | None = None,
    ) -> TriageJob:
        return TriageJob(
            alarm=alarm,
            runbooks=runbooks,
            environment=env,
            channel=channel,
            thread_ts=thread_ts,
            reply_ts=reply_ts,
            storm=storm_key,
        )

    def _post(
        self, channel: str, thread_ts: str | None, text: str, *, timeline_button: bool = False
    ) -> str | None:
        blocks = render.with_timeline_button(text) if timeline_button else None
        try:
            response = self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=blocks
            )
            return str(response["ts"])
        except SlackApiError as exc:
            logger.warning("could not post in %s: %s", channel, exc.response.get("error"))
            return None

    def _wait_for(self, key: str, timeout_s: float = 5.0) -> str | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.redis.get(key)
            if value:
                return _s(value)
            time.sleep(0.05)
        return None


def _poster(alarm: Alarm) -> str:
    """Who raised the alarm, as the timeline says it."""
    return {"cloudwatch": "CloudWatch", "pagerduty": "PagerDuty"}.get(alarm.source, "alarm post")


def _first_reply(alarm: Alarm, runbooks: list[str], claimed: list[str]) -> str:
    text = f":mag: Triaging *{escape(alarm.name)}* ({escape(alarm.state)}): {', '.join(runbooks)}"
    skipped = [rb for rb in runbooks if rb not in claimed]
    if skipped:
        text += f" ({', '.join(skipped)} already running for another alarm in the last minutes)"
    return text + "…"


def _unrouted_text(alarm: Alarm) -> str:
    read = ", ".join(f"{k}={escape(v)}" for k, v in alarm.explain().items() if v)
    return (
        f":grey_question: I read this alarm as {read or 'nothing useful'}, but no routing rule matches it, so I did not triage it. "
        'Add a rule, e.g. `OMNI_ALARM_ROUTES=\'[{"name": "'
        + escape(alarm.name or "my-alarm").replace("`", "'")
        + '", "runbooks": ["db"]}]\'`, '
        "or check what Omni reads with `omni alarm explain FILE`."
    )


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
