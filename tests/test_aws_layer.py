"""The AWS layer: clients built once, calls shared between checks, independent calls overlap."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3

from commands.aws import AwsCaller, ClientPool
from commands.runner import make_context, run_runbook
from commands.settings import Settings
from sandbox import Stack


def _recording_session(
    delay_s: float,
) -> tuple[boto3.session.Session, list[tuple[str, float, float]]]:
    """A session whose every call sleeps ``delay_s`` and is recorded with start/end times."""
    session = boto3.session.Session()
    log: list[tuple[str, float, float]] = []
    lock = threading.Lock()
    starts: dict[int, float] = {}

    def before(model: Any, **_: Any) -> None:
        starts[threading.get_ident()] = time.monotonic()
        time.sleep(delay_s)

    def after(model: Any, **_: Any) -> None:
        with lock:
            log.append((model.name, starts.pop(threading.get_ident(), 0.0), time.monotonic()))

    session.events.register("before-call", before)
    session.events.register("after-call", after)
    return session, log


def test_pool_builds_each_client_once() -> None:
    pool = ClientPool(boto3.session.Session())
    clients = {id(pool.client("rds", "us-east-1")) for _ in range(5)}
    assert len(clients) == 1 and pool.created == 1
    pool.client("rds", "eu-west-1")
    assert pool.created == 2


def test_threads_wanting_a_client_being_built_share_it() -> None:
    pool = ClientPool(boto3.session.Session())
    barrier = threading.Barrier(8)
    got: list[int] = []

    def want() -> None:
        barrier.wait()
        got.append(id(pool.client("ec2", "us-east-1")))

    threads = [threading.Thread(target=want) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1 and pool.created == 1


def test_a_client_that_cannot_be_built_fails_every_time_with_its_reason() -> None:
    from botocore.exceptions import UnknownServiceError

    pool = ClientPool(boto3.session.Session())
    for _ in range(2):  # a failure is not remembered as a client, nor left half-built
        try:
            pool.client("no-such-service", "us-east-1")
        except UnknownServiceError as exc:
            assert "no-such-service" in str(exc)
        else:
            raise AssertionError("an unknown service built a client")
    assert pool.created == 0


def test_warming_in_the_background_builds_what_is_missing_in_order() -> None:
    pool = ClientPool(boto3.session.Session())
    pool.client("ecs", "us-east-1")
    built: list[str] = []
    original = pool._session.client

    def recording(service: str, **kwargs: Any) -> Any:
        built.append(service)
        return original(service, **kwargs)

    pool._session.client = recording  # type: ignore[method-assign]
    thread = pool.warm_in_background(["rds", "ecs", "no-such-service", "cloudwatch"], "us-east-1")
    assert thread is not None
    thread.join(timeout=30)
    assert built == ["rds", "no-such-service", "cloudwatch"]  # ecs was there; a failure skipped
    assert pool.created == 3
    assert pool.warm_in_background(["rds", "ecs", "cloudwatch"], "us-east-1") is None


def test_concurrent_identical_calls_are_made_once(stack: Stack) -> None:
    session, log = _recording_session(0.2)
    caller = AwsCaller(ClientPool(session), "us-east-1")
    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                caller.call(
                    "rds", "describe_db_clusters", DBClusterIdentifier=stack.names.aurora_cluster
                )
            )
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert [name for name, *_ in log] == ["DescribeDBClusters"]


def test_db_runbook_calls_overlap_and_are_not_repeated(settings: Settings, stack: Stack) -> None:
    session, log = _recording_session(0.2)
    pool = ClientPool(session, max_attempts=2)
    report = run_runbook("db", make_context(settings, pool, outputs=stack.outputs))
    assert not report.failed
    names = [name for name, *_ in log]
    # shared calls are made once per run
    assert names.count("DescribeDBClusters") == 1
    assert names.count("GetSecretValue") == 1
    # independent calls were in flight at the same time
    peak = max(sum(1 for _, s, e in log if s <= t < e) for _, t, _ in log)
    assert peak >= 3, log
    # the longest chain of calls made one after another is the dependent chain (cluster →
    # security groups), not the sum; counted from the calls' order, not the wall clock, which
    # a busy host stretches
    ordered = sorted(log, key=lambda c: c[1])
    chain = {i: 1 for i in range(len(ordered))}
    for i, (_, start, _) in enumerate(ordered):
        for j in range(i):
            if ordered[j][2] <= start:
                chain[i] = max(chain[i], chain[j] + 1)
    assert max(chain.values()) <= 3 < len(log), (chain, log)


def test_a_check_waits_for_a_claimed_client_instead_of_building_it_out_of_turn() -> None:
    pool = ClientPool(boto3.session.Session())
    built: list[str] = []
    original = pool._session.client

    def slow(service: str, **kwargs: Any) -> Any:
        time.sleep(0.05)  # wide enough for the other thread to ask while the first is built
        built.append(service)
        return original(service, **kwargs)

    pool._session.client = slow  # type: ignore[method-assign]
    thread = pool.warm_in_background(["rds", "secretsmanager", "ec2"], "us-east-1")
    assert thread is not None
    ec2 = pool.client("ec2", "us-east-1")  # asked first by the "check", built last, in turn
    thread.join(timeout=30)
    assert built == ["rds", "secretsmanager", "ec2"]
    assert ec2 is pool.client("ec2", "us-east-1") and pool.created == 3
