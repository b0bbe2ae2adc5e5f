"""Reading the recent writes: CloudTrail (paged, paced), ECS deployments, RDS events.

CloudTrail's ``LookupEvents`` allows about two calls a second per account and region and one
lookup attribute per call.  A run makes its calls through :data:`PACE` (one every 0.5 s per
region, across the process: two runs at once share the budget rather than each spend it), and
a throttled page is tried again after a pause before the reading gives up on the rest.  A
window rarely holds more than a page or two of writes (50 each); :data:`MAX_PAGES` bounds a
busy account's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import AwsCallError
from ._model import Change, Reading

if TYPE_CHECKING:
    from ..context import CheckContext

logger = logging.getLogger(__name__)

MAX_PAGES = 10  # 500 writes in the window: beyond, the reading says it was cut
PAGE_SIZE = 50  # the API's maximum
THROTTLED_TRIES = 4  # a page throttled this often (after botocore's own retries) ends the read


class Pace:
    """At most one call per interval per key, across threads (a process-wide budget); a
    throttled call doubles its key's interval (up to :attr:`slowest_s`): the account's other
    callers (a console, a SIEM) share the same two calls a second."""

    def __init__(self, interval_s: float, slowest_s: float = 4.0) -> None:
        self.interval_s = interval_s
        self.slowest_s = slowest_s
        self._next: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(key, 0.0))
            self._next[key] = slot + self._interval.get(key, self.interval_s)
        if slot > now:
            time.sleep(slot - now)

    def slow_down(self, key: str) -> float:
        with self._lock:
            interval = min(self._interval.get(key, self.interval_s) * 2, self.slowest_s)
            self._interval[key] = interval
            self._next[key] = max(self._next.get(key, 0.0), time.monotonic() + interval)
            return interval


PACE = Pace(0.5)


def who(identity: dict[str, Any]) -> str | None:
    """The principal of a CloudTrail ``userIdentity``: the IAM user, or the assumed role and its
    session name (who, on a team that assumes roles), or the AWS service."""
    kind = identity.get("type")
    if kind == "IAMUser":
        return f"user/{identity.get('userName') or str(identity.get('arn', '')).rsplit('/', 1)[-1]}"
    if kind == "AssumedRole":
        arn = str(identity.get("arn", ""))  # arn:aws:sts::1:assumed-role/<role>/<session>
        parts = arn.split(":assumed-role/", 1)[-1].split("/")
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        role = issuer.get("userName") or (parts[0] if parts else "?")
        session = parts[1] if len(parts) > 1 else None
        return f"role/{role}" + (f" (session {session})" if session else "")
    if kind == "Root":
        return "the account's root user"
    if kind == "AWSService":
        return f"AWS service {identity.get('invokedBy', '')}".strip()
    if kind == "FederatedUser":
        return f"federated/{str(identity.get('arn', '')).rsplit('/', 1)[-1]}"
    return str(identity.get("arn") or identity.get("principalId") or "") or None


def _resources(event: dict[str, Any]) -> list[str]:
    """The event's own ``Resources`` (CloudTrail does not always list what a call touched, so
    the identifiers in its request and response are added: :func:`_identifiers`)."""
    return [str(r["ResourceName"]) for r in event.get("Resources") or [] if r.get("ResourceName")]


def _identifiers(value: Any, into: list[str], depth: int = 0) -> None:
    """Identifier-like strings in a request or response: ids and names, not free text."""
    if depth > 4:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and _IDENTIFIER_KEYS.get(k.lower(), False):
                into.append(v)
            else:
                _identifiers(v, into, depth + 1)
    elif isinstance(value, list):
        for v in value[:50]:
            _identifiers(v, into, depth + 1)


_IDENTIFIER_KEYS = {
    k.lower(): True
    for k in (
        "groupId",
        "routeTableId",
        "natGatewayId",
        "dBClusterIdentifier",
        "dBInstanceIdentifier",
        "cluster",
        "service",
        "taskDefinition",
        "taskDefinitionArn",
        "family",
        "name",
        "id",
        "webACLId",
        "alarmName",
        "loadBalancerArn",
        "targetGroupArn",
        "subnetId",
        "vpcId",
    )
}


def from_cloudtrail(event: dict[str, Any]) -> Change:
    detail: dict[str, Any] = {}
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    request = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    names = _resources(event)
    _identifiers(request, names)
    _identifiers(response, names)
    when = event.get("EventTime")
    at = when if isinstance(when, datetime) else datetime.fromtimestamp(float(when or 0), UTC)
    return Change(
        id=str(event.get("EventId", "")),
        at=at if at.tzinfo else at.replace(tzinfo=UTC),
        name=str(event.get("EventName", "")),
        source="cloudtrail",
        who=who(detail.get("userIdentity") or {}) or event.get("Username"),
        resources=sorted(set(names)),
        request=request if isinstance(request, dict) else {},
        response=response if isinstance(response, dict) else {},
    )


def _lookup_pages(
    ctx: CheckContext,
    reading: Reading,
    *,
    start: datetime,
    end: datetime,
    attribute: dict[str, str],
    max_pages: int,
    stop: Any = None,
) -> list[dict[str, Any]]:
    """Every page of one lookup (one attribute), paced; stops early when ``stop(events)``."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(max_pages):
        params: dict[str, Any] = {
            "LookupAttributes": [attribute],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": PAGE_SIZE,
        }
        if token:
            params["NextToken"] = token
        page = None
        for attempt in range(THROTTLED_TRIES):
            PACE.wait(ctx.region)
            try:
                page = ctx.aws.call_unshared("cloudtrail", "lookup_events", **params)
                break
            except AwsCallError as exc:
                if not exc.throttled or attempt == THROTTLED_TRIES - 1:
                    if events:  # keep what was read: the newest writes come first
                        reading.truncated = True
                        reading.errors.append(
                            f"cloudtrail:LookupEvents: {exc.code} after {len(events)} events"
                        )
                        reading.throttled = reading.throttled or exc.throttled
                        return events
                    raise
                logger.info("CloudTrail throttled: next call in %.1f s", PACE.slow_down(ctx.region))
        reading.pages += 1
        assert page is not None
        events += page.get("Events", [])
        token = page.get("NextToken")
        if (stop is not None and stop(events)) or not token:
            return events
    reading.truncated = bool(token)
    return events


def _cloudtrail(ctx: CheckContext, reading: Reading, start: datetime) -> None:
    try:
        events = _lookup_pages(
            ctx,
            reading,
            start=start,
            end=ctx.now + timedelta(minutes=1),
            attribute={"AttributeKey": "ReadOnly", "AttributeValue": "false"},
            max_pages=MAX_PAGES,
        )
    except AwsCallError as exc:
        reading.errors.append(f"cloudtrail:LookupEvents: {exc.code}: {exc.message}"[:300])
        reading.denied = reading.denied or exc.access_denied
        reading.throttled = reading.throttled or exc.throttled
        return
    for event in events:
        if str(event.get("ReadOnly", "false")).lower() == "true":
            continue  # the filter asked for writes; a read never counts
        reading.changes.append(from_cloudtrail(event))


def _ecs(ctx: CheckContext, reading: Reading, start: datetime) -> None:
    """The service's deployments that started in the window (an ECS fact, not CloudTrail's)."""
    try:
        service = ctx.ecs_service()
    except Exception as exc:  # the ecs checks report a missing service
        logger.debug("no ECS deployments read: %s", exc)
        return
    for d in service.get("deployments", []):
        at = d.get("createdAt")
        if not isinstance(at, datetime) or at < start:
            continue
        td = str(d.get("taskDefinition", ""))
        reading.changes.append(
            Change(
                id=f"ecs-deployment:{d.get('id')}",
                at=at,
                name="ECS deployment",
                source="ecs",
                resources=[ctx.names.ecs_service, td, td.rsplit("/", 1)[-1]],
                request={"taskDefinition": td, "status": d.get("status")},
                message=f"deployment of {td.rsplit('/', 1)[-1]} ({d.get('rolloutState') or d.get('status')})",
            )
        )


def _rds(ctx: CheckContext, reading: Reading, start: datetime) -> None:
    cluster = ctx.names.aurora_cluster
    try:
        events = ctx.aws.call(
            "rds",
            "describe_events",
            SourceType="db-cluster",
            SourceIdentifier=cluster,
            StartTime=start,
            EndTime=ctx.now + timedelta(minutes=1),
        ).get("Events", [])
    except AwsCallError as exc:
        reading.errors.append(f"rds:DescribeEvents: {exc.code}: {exc.message}"[:300])
        return
    for e in events:
        at = e.get("Date")
        if not isinstance(at, datetime):
            continue
        reading.changes.append(
            Change(
                id=f"rds-event:{at.isoformat()}:{e.get('SourceIdentifier')}",
                at=at,
                name="RDS event",
                source="rds",
                resources=[str(e.get("SourceIdentifier", cluster))],
                message=str(e.get("Message", ""))[:300],
                request={"EventCategories": e.get("EventCategories", [])},
            )
        )


class _Recent:
    """The account's CloudTrail writes, read once for every run that starts within
    :data:`FRESH_S` of the read, per environment and region (one read in flight at a time).

    Two calls a second is CloudTrail's budget for the whole account: with one lookup per run,
    a storm of triages (or 500 diagnoses in the load test: 130 s paced, one run per lookup)
    would queue behind it.  CloudTrail itself delivers an event minutes after the call, so a
    read 20 s old misses nothing a fresh one would have.  ECS deployments and RDS events are
    still read per run (their own APIs, no such budget)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, ...], tuple[float, Reading]] = {}
        self._flight: dict[tuple[str, ...], threading.Lock] = {}

    def get(self, key: tuple[str, ...], read: Any) -> Reading:
        with self._lock:
            flight = self._flight.setdefault(key, threading.Lock())
        with flight:  # a second run waits for the read in flight rather than make its own
            with self._lock:
                cached = self._reads.get(key)
            if cached is not None and time.monotonic() - cached[0] < FRESH_S:
                return cached[1].model_copy(deep=True)
            reading: Reading = read()
            if not reading.errors:  # an error is read again by the next run
                with self._lock:
                    self._reads[key] = (time.monotonic(), reading)
            return reading.model_copy(deep=True)

    def forget(self) -> None:
        with self._lock:
            self._reads.clear()


FRESH_S = 20.0
_RECENT = _Recent()
forget = _RECENT.forget  # the world changed under the process (tests, the accuracy bench)


def recent(ctx: CheckContext) -> Reading:
    """The writes of the run's window, newest first; read once per run, whoever asks (and the
    CloudTrail part once for the runs of the next :data:`FRESH_S`)."""

    def read() -> Reading:
        start = ctx.now - timedelta(minutes=ctx.settings.changes_window_min)
        key = (
            ctx.settings.environment,
            ctx.region,
            str(ctx.settings.account_id or ctx.settings.role_arn or ""),
            str(ctx.settings.changes_window_min),
        )

        def trail() -> Reading:
            reading = Reading()
            _cloudtrail(ctx, reading, start)
            return reading

        reading = Reading()
        shared: list[Reading] = []
        ctx.gather(
            lambda: shared.append(_RECENT.get(key, trail)),
            lambda: _ecs(ctx, reading, start),
            lambda: _rds(ctx, reading, start),
        )
        for part in shared:
            reading.changes += part.changes
            reading.pages, reading.truncated = part.pages, part.truncated
            reading.errors += part.errors
            reading.throttled, reading.denied = part.throttled, part.denied
        reading.changes = _merged([c for c in reading.changes if c.at >= start])
        return reading

    result: Reading = ctx.aws.shared("changes.recent", read)
    return result


def _merged(changes: list[Change]) -> list[Change]:
    """Newest first; an ECS deployment or RDS event that CloudTrail already has (the call that
    made it, within two minutes, on the same resource) is dropped: the call names who."""
    trail = [c for c in changes if c.source == "cloudtrail"]
    kept = list(trail)
    for c in changes:
        if c.source == "cloudtrail":
            continue
        twin = any(
            abs((t.at - c.at).total_seconds()) <= 120 and set(t.resources) & set(c.resources)
            for t in trail
        )
        if not twin:
            kept.append(c)
    return sorted(kept, key=lambda c: c.at, reverse=True)


def lookup_older(
    ctx: CheckContext, resource: str, before: datetime, want: Any, purpose: str, *, days: int = 90
) -> Change | None:
    """The newest write to ``resource`` before ``before`` for which ``want(change)`` holds (the
    state a change replaced: the capacity or the rules before it), looking back ``days``; a
    lookup by ``ResourceName``, paced like the rest.  None when not found or not readable."""

    def read() -> Change | None:
        reading = Reading()
        found: list[Change] = []

        def stop(events: list[dict[str, Any]]) -> bool:
            for event in events[len(found_seen) :]:
                found_seen.append(event)
                change = from_cloudtrail(event)
                if change.at < before and str(event.get("ReadOnly")) != "true" and want(change):
                    found.append(change)
                    return True
            return False

        found_seen: list[dict[str, Any]] = []
        try:
            _lookup_pages(
                ctx,
                reading,
                start=before - timedelta(days=days),
                end=before,
                attribute={"AttributeKey": "ResourceName", "AttributeValue": resource},
                max_pages=MAX_PAGES,
                stop=stop,
            )
        except AwsCallError as exc:
            logger.info("no earlier write to %s read: %s", resource, exc)
            return None
        return found[0] if found else None

    key = f"changes.older:{purpose}:{resource}:{before.isoformat()}"
    result: Change | None = ctx.aws.shared(key, read)
    return result
