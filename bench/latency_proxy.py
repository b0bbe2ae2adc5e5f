"""An HTTP proxy in front of moto that adds a fixed delay to every request.

The benchmark uses it as is; the fault suite (``tests/faults.py``) subclasses it and answers
some requests itself through :meth:`LatencyProxy.intercept`.

Its sockets are TCP_NODELAY: the response goes out as headers then body, and on a Nagle socket
the body waited for the client's delayed ACK (40 ms on Linux) on about half the calls, a cost
no AWS endpoint adds and that the benchmark counted as Omni's.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

Reply = tuple[int, dict[str, str], bytes]


class LatencyProxy:
    def __init__(self, upstream: str, delay_s: float = 0.0) -> None:
        target = urlparse(upstream)
        self.delay_s = delay_s
        self.forwarded = 0  # requests answered by moto
        self._count_lock = threading.Lock()
        local = threading.local()
        proxy = self

        def upstream_conn(fresh: bool = False) -> http.client.HTTPConnection:
            if fresh or getattr(local, "conn", None) is None:
                local.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            conn: http.client.HTTPConnection = local.conn
            return conn

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                return

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                reply = proxy.intercept(self.command, self.path, dict(self.headers.items()), body)
                if reply is not None:
                    self._reply(*reply)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"connection", "keep-alive"}
                }
                conn = upstream_conn()
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                except (http.client.HTTPException, OSError):
                    conn = upstream_conn(fresh=True)
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                payload = response.read()
                with proxy._count_lock:
                    proxy.forwarded += 1
                self._reply(response.status, dict(response.getheaders()), payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def intercept(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Reply | None:
        """Answer a request here instead of passing it on (after the delay); None passes it."""
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
