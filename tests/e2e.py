"""Fixtures for tests that run Omni's processes against a moto server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from commands.aws import ClientPool
from commands.names import Names
from commands.settings import Settings
from sandbox import Stack, seed

from .helpers import free_port


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def served_stack(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stack:
    """A fresh healthy stack in the moto server; its Terraform outputs in ``outputs.json``."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    pool = ClientPool(boto3.session.Session(), max_attempts=2)
    settings = Settings()
    stack = seed(pool, Names.from_settings(settings), "us-east-1")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                k: {"value": v, "type": "string", "sensitive": False}
                for k, v in stack.outputs.items()
            }
        )
    )
    stack.extra["outputs_file"] = str(outputs)
    stack.extra["endpoint"] = moto_server
    return stack


def aws_env(stack: Stack) -> dict[str, Any]:
    return {
        "AWS_ENDPOINT_URL": stack.extra["endpoint"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": stack.region,
        "OMNI_TERRAFORM_OUTPUTS": stack.extra["outputs_file"],
    }
