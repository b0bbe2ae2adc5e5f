"""Terraform outputs: from a ``terraform output -json`` file or a state object at ``s3://…``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import TerraformOutputsError

logger = logging.getLogger(__name__)

KNOWN_OUTPUTS = (
    "vpc_id",
    "private_app_subnet_ids",
    "public_subnet_ids",
    "alb_arn",
    "alb_arn_suffix",
    "alb_dns_name",
    "alb_security_group_id",
    "ecs_security_group_id",
    "aurora_security_group_id",
    "aurora_cluster_endpoint",
    "bastion_instance_id",
    "waf_web_acl_arn",
    "nat_gateway_ids",
    "alarms_sns_topic_arn",
)


def parse_outputs(document: dict[str, Any]) -> dict[str, Any]:
    """Flatten either shape into ``{name: value}``.

    ``terraform output -json`` gives ``{name: {"value": v, "type": t, "sensitive": b}}``;
    a state file gives ``{"version": 4, ..., "outputs": {name: {"value": v, "type": t}}}``.
    Sensitive outputs are dropped: Omni never needs them and must never print them.
    """
    if (
        "outputs" in document
        and isinstance(document["outputs"], dict)
        and ("version" in document or "terraform_version" in document or "resources" in document)
    ):
        document = document["outputs"]
    out: dict[str, Any] = {}
    for name, entry in document.items():
        if isinstance(entry, dict) and "value" in entry:
            if entry.get("sensitive"):
                continue
            out[name] = entry["value"]
        else:
            out[name] = entry
    return out


def load_outputs(location: str | None, s3_client_factory: Any = None) -> dict[str, Any]:
    """Read the outputs at ``location`` (path or ``s3://bucket/key``); ``None`` → ``{}``.

    ``s3_client_factory`` is a zero-argument callable returning a boto3 S3 client (kept as a
    parameter so the caller decides about sessions, regions and credentials).
    """
    if not location:
        return {}
    try:
        if location.startswith("s3://"):
            parsed = urlparse(location)
            bucket, key = parsed.netloc, parsed.path.lstrip("/")
            if not bucket or not key:
                raise TerraformOutputsError(f"{location}: expected s3://bucket/key")
            if s3_client_factory is None:
                raise TerraformOutputsError("reading outputs from S3 needs an S3 client")
            body = s3_client_factory().get_object(Bucket=bucket, Key=key)["Body"].read()
            document = json.loads(body)
        else:
            document = json.loads(Path(location).read_text())
    except TerraformOutputsError:
        raise
    except Exception as exc:
        raise TerraformOutputsError(
            f"cannot read Terraform outputs from {location}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(document, dict):
        raise TerraformOutputsError(f"{location}: not a JSON object")
    outputs = parse_outputs(document)
    logger.debug("read %d terraform outputs from %s", len(outputs), location)
    return outputs
