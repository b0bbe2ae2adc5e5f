"""A fault-injecting HTTP proxy in front of the moto server, for the fault suite.

It speaks each AWS protocol's error format, so botocore sees real throttling and real access
denials: the first ``throttle`` attempts of every distinct request get the service's
throttling error (query and EC2 XML, JSON, CBOR for CloudWatch, S3's ``SlowDown``), operations
in ``deny`` get ``AccessDenied``, and ``hang`` holds every request until it is released.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

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


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        throttle: int = 0,
        deny: set[str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        target = urlparse(upstream)
        self.delay_s = delay_s
        self.throttle = throttle
        self.deny = deny or set()
        self.hang = threading.Event()
        self.hang.set()  # set: requests flow; cleared: they wait
        self.attempts: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.denied: Counter[str] = Counter()
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                service = _service(self.headers.get("Authorization", ""))
                operation = _operation(self.path, dict(self.headers.items()), body)
                key = hashlib.sha256(
                    f"{self.command} {self.path} {operation}".encode() + body
                ).hexdigest()
                proxy.hang.wait()
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                with proxy._lock:
                    proxy.attempts[key] += 1
                    attempt = proxy.attempts[key]
                fault: tuple[int, dict[str, str], bytes] | None = None
                if operation in proxy.deny:
                    with proxy._lock:
                        proxy.denied[operation] += 1
                    fault = error_response(
                        service, "AccessDenied", f"not allowed: {operation}", dict(self.headers)
                    )
                elif attempt <= proxy.throttle:
                    with proxy._lock:
                        proxy.throttled[operation] += 1
                    fault = error_response(
                        service, "Throttling", "Rate exceeded", dict(self.headers)
                    )
                if fault is not None:
                    status, headers, payload = fault
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"connection", "keep-alive"}
                }
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                with proxy._lock:
                    proxy.forwarded += 1
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hang.set()
        self.server.shutdown()
        self.server.server_close()


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
