"""A fault-injecting HTTP proxy in front of the moto server, for the fault suite.

It speaks each AWS protocol's error format, so botocore sees real throttling and real access
denials: the first ``throttle`` attempts of every distinct request get the service's
throttling error (query and EC2 XML, JSON, CBOR for CloudWatch, S3's ``SlowDown``), operations
in ``deny`` get ``AccessDenied``; the rest go on to moto, after ``delay_s``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from urllib.parse import parse_qs

from bench.latency_proxy import LatencyProxy

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _cbor_text(text: str) -> bytes:
    raw = text.encode()
    if len(raw) < 24:
        return bytes([0x60 + len(raw)]) + raw
    return bytes([0x78, len(raw)]) + raw


def _cbor_map(doc: dict[str, str]) -> bytes:
    out = bytes([0xA0 + len(doc)])
    for k, v in doc.items():
        out += _cbor_text(k) + _cbor_text(v)
    return out


def error_response(
    service: str, code: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """The error as the request's protocol spells it."""
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    if "x-amz-target" in lower:
        service = "json"
    elif "cbor" in lower.get("content-type", ""):
        service = "monitoring"
    throttle = code in {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown"}
    if service == "ec2":
        code = "RequestLimitExceeded" if throttle else "UnauthorizedOperation"
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            "</Errors><RequestID>fault</RequestID></Response>"
        )
        return 503 if throttle else 403, {"Content-Type": "text/xml"}, body.encode()
    if service == "s3":
        code = "SlowDown" if throttle else "AccessDenied"
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return 503 if throttle else 403, {"Content-Type": "application/xml"}, body.encode()
    if service in {"monitoring"}:  # CloudWatch speaks CBOR (smithy rpc v2)
        code = "ThrottlingException" if throttle else "AccessDeniedException"
        return (
            400,
            {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
            _cbor_map({"__type": code, "message": message}),
        )
    if service in {"rds", "elasticloadbalancing", "iam", "sns", "sts"}:  # query protocol
        code = "Throttling" if throttle else "AccessDenied"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
        )
        return 400 if throttle else 403, {"Content-Type": "text/xml"}, body.encode()
    code = "ThrottlingException" if throttle else "AccessDeniedException"  # JSON protocols
    body = json.dumps({"__type": code, "message": message})
    return 400, {"Content-Type": "application/x-amz-json-1.1"}, body.encode()


class FaultProxy(LatencyProxy):
    """bench's latency proxy, answering throttles and denials itself as configured."""

    def __init__(
        self,
        upstream: str,
        *,
        throttle: int = 0,
        deny: set[str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(upstream, delay_s)
        self.throttle = throttle
        self.deny = deny or set()
        self.attempts: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.denied: Counter[str] = Counter()
        self._lock = threading.Lock()

    def intercept(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes] | None:
        service = _service(headers.get("Authorization", ""))
        operation = _operation(path, headers, body)
        key = hashlib.sha256(f"{method} {path} {operation}".encode() + body).hexdigest()
        with self._lock:
            self.attempts[key] += 1
            attempt = self.attempts[key]
            if operation in self.deny:
                self.denied[operation] += 1
                return error_response(service, "AccessDenied", f"not allowed: {operation}", headers)
            if attempt <= self.throttle:
                self.throttled[operation] += 1
                return error_response(service, "Throttling", "Rate exceeded", headers)
        return None


def _service(authorization: str) -> str:
    m = _SCOPE.search(authorization)
    return m.group(1) if m else "?"


def _operation(path: str, headers: dict[str, str], body: bytes) -> str:
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in path:  # smithy rpc v2 (CloudWatch)
        return path.rsplit("/operation/", 1)[1].split("?")[0]
    if body[:7] == b"Action=" or b"&Action=" in body:
        return parse_qs(body.decode()).get("Action", ["?"])[0]
    return f"{path.split('?')[0]}"
