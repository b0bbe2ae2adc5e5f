"""An HTTP proxy that adds a fixed delay to every request before passing it to moto.

Its sockets are TCP_NODELAY: the response goes out as headers then body, and on a Nagle socket
the body waited for the client's delayed ACK (40 ms on Linux) on about half the
calls, a cost no AWS endpoint adds and that the benchmark counted as Omni's.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


class LatencyProxy:
    def __init__(self, upstream: str, delay_s: float) -> None:
        target = urlparse(upstream)
        self.delay_s = delay_s
        self.requests = 0
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(proxy.delay_s)
                proxy.requests += 1
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(
                        target.hostname, target.port, timeout=60
                    )
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"connection", "keep-alive"}
                }
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                except (http.client.HTTPException, OSError):
                    local.conn = conn = http.client.HTTPConnection(
                        target.hostname, target.port, timeout=60
                    )
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
