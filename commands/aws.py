"""Shared boto3 clients and a per-run, concurrency-safe memo of AWS calls.

Building a boto3 client costs about 90 ms, so a :class:`ClientPool` builds each (service,
region) client once per process and every job reuses it (boto3 clients are thread-safe;
sessions are not, so the pool builds one client at a time; a thread that wants a client being
built waits for that one only).  Retries are botocore's own
(``standard`` or ``adaptive`` mode).

An :class:`AwsCaller` lives for one runbook run.  Several checks often need the same call
(``describe_db_clusters`` feeds four db checks): the first caller makes it, the others wait
for its result, so each distinct call is made once and the run's wall time is the longest
chain of *dependent* calls rather than their sum.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .errors import AwsCallError

logger = logging.getLogger(__name__)


class ClientPool:
    """Process-wide boto3 clients, one per (service, region)."""

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        retry_mode: str = "standard",
        max_attempts: int = 5,
        max_pool_connections: int = 32,
    ) -> None:
        self._session = session or boto3.session.Session()
        self._config = Config(
            retries={"mode": retry_mode, "max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=20,
            max_pool_connections=max_pool_connections,
            user_agent_extra="omni",
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._building: dict[tuple[str, str], Future[Any]] = {}
        self._lock = threading.Lock()  # guards the two maps
        self._build_lock = threading.Lock()  # one build at a time: sessions are not thread-safe
        self.created = 0

    @property
    def session(self) -> boto3.session.Session:
        return self._session

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            pending = self._building.get(key)
            owner = pending is None
            if pending is None:
                pending = self._building[key] = Future()
        if not owner:  # another thread builds it (or will, in order): take it when ready
            return pending.result()
        return self._build(key, pending)

    def _build(self, key: tuple[str, str], pending: Future[Any]) -> Any:
        service, region = key
        try:
            with self._build_lock:
                client = self._session.client(service, region_name=region, config=self._config)
        except BaseException as exc:
            with self._lock:
                del self._building[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._clients[key] = client
            del self._building[key]
            self.created += 1
        pending.set_result(client)
        logger.debug("built boto3 client %s/%s", service, region)
        return client

    def warm(self, services: list[str], region: str) -> None:
        """Build clients ahead of the first job (the worker calls this at start)."""
        for service in services:
            self.client(service, region)

    def warm_in_background(self, services: list[str], region: str) -> threading.Thread | None:
        """Build the missing clients on a daemon thread, in this order; None when none is missing.

        A client costs 5-70 ms of CPU; a fresh process that builds the later ones while its
        first calls wait on the network takes them off the runbook's critical path.  The
        thread claims every missing client at once, so a check asking for one waits for it
        rather than building it out of turn.  One that cannot be built fails the checks waiting
        for it with its reason, and is tried again by the next caller.
        """
        claimed: list[tuple[tuple[str, str], Future[Any]]] = []
        with self._lock:
            for service in dict.fromkeys(services):
                key = (service, region)
                if key not in self._clients and key not in self._building:
                    future: Future[Any] = Future()
                    self._building[key] = future
                    claimed.append((key, future))
        if not claimed:
            return None

        def build() -> None:
            for key, future in claimed:
                try:
                    self._build(key, future)
                except Exception as exc:  # the check that needs it reports the error
                    logger.debug("could not build %s/%s ahead: %s", *key, exc)

        thread = threading.Thread(target=build, name="omni-warm", daemon=True)
        thread.start()
        return thread


def marker_pages(
    call: Callable[..., dict[str, Any]], key: str, *, limit: int = 100, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list call that pages with ``NextMarker`` and has no boto3 paginator
    (WAFv2's ``list_web_acls``, ``list_ip_sets``…); ``call(**params)`` makes one call."""
    items: list[dict[str, Any]] = []
    marker: str | None = None
    for _ in range(1000):  # a bound, not a limit anyone meets
        page = call(**params, Limit=limit, **({"NextMarker": marker} if marker else {}))
        items += page.get(key, [])
        marker = page.get("NextMarker")
        if not marker or not page.get(key):
            break
    return items


def _key(service: str, operation: str, params: dict[str, Any]) -> str:
    return f"{service}.{operation}:" + json.dumps(params, sort_keys=True, default=str)


class AwsCaller:
    """One run's view of AWS: memoised calls, errors turned into :class:`AwsCallError`."""

    def __init__(
        self,
        pool: ClientPool,
        region: str,
        on_call: Callable[[str, str, float, str | None], None] | None = None,
    ) -> None:
        self._pool = pool
        self.region = region
        self._memo: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._on_call = on_call
        self.calls: list[str] = []

    def prepare(self, services: list[str]) -> None:
        """Start building the clients these services need (see ``warm_in_background``)."""
        self._pool.warm_in_background(services, self.region)

    def call(
        self, service: str, operation: str, *, in_region: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """Make (or share) one API call; ``operation`` is the snake_case boto3 method name;
        ``in_region``: another region than the run's (an image in another region's ECR)."""
        region = in_region or self.region
        result: dict[str, Any] = self._memoised(
            f"{region}/" + _key(service, operation, params),
            lambda: self._invoke(service, operation, params, region),
        )
        return result

    def call_unshared(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One API call, not memoised: a retry of a throttled page must reach AWS again (the
        caller shares the whole reading instead, see :meth:`shared`)."""
        return self._invoke(service, operation, params, self.region)

    def paginate(
        self,
        service: str,
        operation: str,
        result_key: str,
        *,
        in_region: str | None = None,
        **params: Any,
    ) -> list[Any]:
        """All pages of a paginated call, with ``result_key`` concatenated."""
        region = in_region or self.region

        def run() -> list[Any]:
            client = self._pool.client(service, region)
            items: list[Any] = []
            try:
                for page in client.get_paginator(operation).paginate(**params):
                    items.extend(page.get(result_key, []))
            except (ClientError, BotoCoreError) as exc:
                raise _to_call_error(service, _api_name(client, operation), exc) from exc
            finally:
                self.calls.append(f"{service}.{operation}")
            return items

        return self._memoised(f"pages:{region}/" + _key(service, operation, params), run)  # type: ignore[no-any-return]

    def shared(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` once per run for ``key``, whoever asks first; the others wait and share it
        (a reading several checks need, like the run's recent changes)."""
        return self._memoised(f"shared:{key}", fn)

    def _memoised(self, key: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._memo.get(key)
            owner = future is None
            if future is None:
                future = Future()
                self._memo[key] = future
        if owner:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
        return future.result()

    def _invoke(
        self, service: str, operation: str, params: dict[str, Any], region: str
    ) -> dict[str, Any]:
        client = self._pool.client(service, region)
        try:
            response: dict[str, Any] = getattr(client, operation)(**params)
        except (ClientError, BotoCoreError) as exc:
            error = _to_call_error(service, _api_name(client, operation), exc)
            logger.info("aws call failed: %s", error)
            if self._on_call:
                self._on_call(service, operation, 0.0, error.code)
            raise error from exc
        finally:
            self.calls.append(f"{service}.{operation}")
        response.pop("ResponseMetadata", None)
        if self._on_call:
            self._on_call(service, operation, 0.0, None)
        return response


def _api_name(client: Any, method: str) -> str:
    """``describe_db_clusters`` → ``DescribeDBClusters`` (botocore's own mapping)."""
    return str(client.meta.method_to_api_mapping.get(method, method))


def _to_call_error(service: str, op: str, exc: Exception) -> AwsCallError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(
            err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        )
        message = str(err.get("Message") or exc)
        return AwsCallError(service, op, code, message)
    return AwsCallError(service, op, type(exc).__name__, str(exc))
