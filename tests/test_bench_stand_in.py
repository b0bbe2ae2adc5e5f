"""`make bench` times the runbooks against AWS in its own process (bench/aws_server.py): the
stack is seeded there, where moto's backends live, and comes back as data."""

from __future__ import annotations

import boto3
import pytest

from bench.run import _aws_stand_in
from commands.aws import ClientPool
from commands.runner import make_context, run_runbooks
from commands.settings import Settings

pytestmark = pytest.mark.slow


def test_the_benchmarks_aws_stand_in_serves_a_healthy_seeded_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, _, proxies, seeded = _aws_stand_in((0.0,))
    try:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": proxies[0.0],
        }.items():
            monkeypatch.setenv(key, value)
        assert seeded["outputs"]["alb_arn"] and seeded["extra"]["target_group_arn"]
        ctx = make_context(
            Settings(region="us-east-1"),
            ClientPool(boto3.session.Session()),
            outputs=seeded["outputs"],
        )
        reports = run_runbooks(["db", "ecs"], ctx)
        failing = [
            f.title for r in reports for f in r.findings if f.status.value in ("fail", "error")
        ]
        assert failing == []
    finally:
        proc.terminate()
        proc.wait(timeout=15)
