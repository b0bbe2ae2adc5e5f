"""Bursts of simultaneous requests, timed without a client in the way.

``N`` slash commands arriving at the same moment is what an incident channel sends when everyone
types ``/omni`` at once.  A thread per request would time the client's own GIL contention, so
this opens the ``N`` connections first, then writes all ``N`` pre-signed requests back to back
from one thread and waits for the answers with a selector: each latency is from the moment its
request was written to the moment its response was complete.
"""

from __future__ import annotations

import selectors
import socket
import time


def http_request(
    host: str, port: int, path: str, headers: dict[str, str], body: str, method: str = "POST"
) -> bytes:
    raw = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(raw)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def burst(
    host: str, port: int, requests: list[bytes], timeout_s: float = 30.0
) -> list[tuple[float, int]]:
    """Send every request at once; (latency in ms, HTTP status) for each."""
    socks = [socket.create_connection((host, port), timeout=timeout_s) for _ in requests]
    time.sleep(0.05)  # let the server accept them all before the clock starts
    selector = selectors.DefaultSelector()
    sent: dict[int, float] = {}
    data: dict[int, bytearray] = {}
    for i, (sock, request) in enumerate(zip(socks, requests, strict=True)):
        sent[i] = time.perf_counter()
        sock.sendall(request)
        sock.setblocking(False)
        data[i] = bytearray()
        selector.register(sock, selectors.EVENT_READ, i)
    done: dict[int, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(requests) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            i = key.data
            chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if chunk:
                data[i] += chunk
                continue
            done[i] = time.perf_counter()  # Connection: close → the response is complete
            selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
    results = []
    for i in range(len(requests)):
        status = int(bytes(data[i][9:12]) or b"0") if i in done else 0
        latency = (done[i] - sent[i]) * 1000 if i in done else timeout_s * 1000
        results.append((latency, status))
    selector.close()
    return results
