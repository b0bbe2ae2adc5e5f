from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from commands.errors import TerraformOutputsError
from commands.terraform import load_outputs, parse_outputs

OUTPUT_JSON = {
    "vpc_id": {"sensitive": False, "type": "string", "value": "vpc-123"},
    "private_app_subnet_ids": {
        "sensitive": False,
        "type": ["tuple", ["string", "string"]],
        "value": ["subnet-a", "subnet-b"],
    },
    "db_password": {"sensitive": True, "type": "string", "value": "hunter2"},
}


def test_terraform_output_json_file(tmp_path: Path) -> None:
    f = tmp_path / "outputs.json"
    f.write_text(json.dumps(OUTPUT_JSON))
    out = load_outputs(str(f))
    assert out == {"vpc_id": "vpc-123", "private_app_subnet_ids": ["subnet-a", "subnet-b"]}
    assert "db_password" not in out  # sensitive outputs are never kept


def test_state_file_outputs() -> None:
    state = {
        "version": 4,
        "terraform_version": "1.9.0",
        "serial": 3,
        "outputs": {"alb_arn": {"value": "arn:aws:elasticloadbalancing:x", "type": "string"}},
        "resources": [],
    }
    assert parse_outputs(state) == {"alb_arn": "arn:aws:elasticloadbalancing:x"}


def test_state_object_in_s3(aws: Any) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="omni-tfstate")
    state = {
        "version": 4,
        "terraform_version": "1.9.0",
        "outputs": {
            "vpc_id": {"value": "vpc-9", "type": "string"},
            "nat_gateway_ids": {"value": ["nat-1"], "type": ["list", "string"]},
        },
    }
    s3.put_object(
        Bucket="omni-tfstate", Key="production/terraform.tfstate", Body=json.dumps(state).encode()
    )
    out = load_outputs("s3://omni-tfstate/production/terraform.tfstate", lambda: s3)
    assert out == {"vpc_id": "vpc-9", "nat_gateway_ids": ["nat-1"]}


def test_missing_s3_object_is_a_clear_error(aws: Any) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="omni-missing")
    with pytest.raises(TerraformOutputsError, match="s3://omni-missing/nope"):
        load_outputs("s3://omni-missing/nope", lambda: s3)


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TerraformOutputsError, match=r"bad\.json"):
        load_outputs(str(bad))
    assert load_outputs(None) == {}
