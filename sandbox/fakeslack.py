"""A fake Slack Web API on loopback that records every call (for ``omni demo`` and the tests).

It answers like Slack for the methods Omni uses (``auth.test``, ``chat.postMessage`` with a
fresh ``ts``, ``chat.update``, ``chat.postEphemeral``, ``usergroups.users.list``,
``conversations.replies``, and the three steps of ``files_upload_v2``:
``files.getUploadURLExternal``, the upload URL, ``files.completeUploadExternal``) and can answer
429 with ``Retry-After`` or 5xx on demand.  Response URLs (``/response/<id>``) are recorded too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_USER_ID = "UOMNIBOT"
BOT_ID = "BOMNIBOT"


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.time)

    @property
    def channel(self) -> str | None:
        return self.body.get("channel")

    @property
    def thread_ts(self) -> str | None:
        return self.body.get("thread_ts")

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    def all_text(self) -> str:
        """Every string in the call (text and blocks), for assertions and secret scans."""
        return json.dumps(self.body)


class FakeSlack:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._files = itertools.count(1)
        self.uploads: dict[str, dict[str, Any]] = {}  # file id → what getUploadURLExternal said
        self.files: list[dict[str, Any]] = []  # files shared by completeUploadExternal
        self.block_text_limit = 12_000  # Slack refuses about this much block text a message
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                if self.path.startswith("/upload/"):  # step 2 of files_upload_v2: raw bytes
                    status, text = fake._upload(self.path.removeprefix("/upload/"), data)
                    reply = text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                raw = data.decode()
                ctype = self.headers.get("Content-Type", "")
                body: dict[str, Any]
                if "json" in ctype and raw:
                    body = json.loads(raw)
                else:
                    body = dict(parse_qsl(raw))
                    if "?" in self.path:
                        body.update(parse_qsl(self.path.split("?", 1)[1]))
                    for key in ("blocks", "attachments", "files"):
                        if isinstance(body.get(key), str):
                            with contextlib.suppress(ValueError):
                                body[key] = json.loads(body[key])
                token = (self.headers.get("Authorization") or "").removeprefix(
                    "Bearer "
                ) or body.get("token")
                method = self.path.strip("/").split("?")[0].removeprefix("api/")
                status, headers, answer = fake._answer(method, body, token)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="fake-slack", daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault injection ----------------------------------------------------------------------
    def fail_next(self, times: int = 1, status: int = 429, retry_after: int = 1) -> None:
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        with self._lock:
            self._failures.extend([(status, headers)] * times)

    # -- queries ------------------------------------------------------------------------------
    def find(self, method: str | None = None, **where: Any) -> list[Call]:
        with self._lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and all(c.body.get(k) == v for k, v in where.items())
        ]

    def wait_for(self, predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(interval)
        raise TimeoutError("fake Slack: condition not met in time")

    # -- answers ------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _answer(
        self, method: str, body: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.calls.append(Call(method, body, token))
            if self._failures and not method.startswith("response/") and method != "auth.test":
                status, headers = self._failures.pop(0)
                error = "ratelimited" if status == 429 else "internal_error"
                return status, headers, {"ok": False, "error": error}
        if method == "auth.test":
            return (
                200,
                {},
                {
                    "ok": True,
                    "url": "https://omni-test.slack.com/",
                    "team": "Omni Test",
                    "user": "omni",
                    "team_id": "T111",
                    "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID,
                },
            )
        if method in ("chat.postMessage", "chat.update") and body.get("blocks"):
            blocks = body["blocks"]
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            if len(blocks) > 50:
                return 200, {}, {"ok": False, "error": "invalid_blocks"}
            if _block_text(blocks) > self.block_text_limit:  # HTTP 200, ok: false, as Slack
                return 200, {}, {"ok": False, "error": "msg_blocks_too_long"}
        if method == "chat.postMessage":
            channel = body.get("channel")
            if not channel:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            ts = self._next_ts()
            message = {
                "type": "message",
                "ts": ts,
                "text": body.get("text", ""),
                "bot_id": BOT_ID,
                "user": BOT_USER_ID,
                "blocks": body.get("blocks"),
                "thread_ts": body.get("thread_ts"),
            }
            with self._lock:
                self.messages[(channel, ts)] = message
            return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            key = (body.get("channel"), body.get("ts"))
            with self._lock:
                if key not in self.messages:
                    return 200, {}, {"ok": False, "error": "message_not_found"}
                self.messages[key].update(
                    {"text": body.get("text", ""), "blocks": body.get("blocks")}
                )
            return (
                200,
                {},
                {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text", "")},
            )
        if method == "chat.postEphemeral":
            return 200, {}, {"ok": True, "message_ts": self._next_ts()}
        if method == "usergroups.users.list":
            users = self.usergroups.get(str(body.get("usergroup")))
            if users is None:
                return 200, {}, {"ok": False, "error": "no_such_subteam"}
            return 200, {}, {"ok": True, "users": users}
        if method == "conversations.replies":
            channel, ts = str(body.get("channel")), str(body.get("ts"))
            with self._lock:
                replies = [
                    m
                    for (c, _), m in self.messages.items()
                    if c == channel and (m["ts"] == ts or m.get("thread_ts") == ts)
                ]
            return 200, {}, {"ok": True, "messages": sorted(replies, key=lambda m: m["ts"])}
        if method == "files.getUploadURLExternal":
            try:
                length = int(body.get("length") or 0)
            except ValueError:
                length = 0
            if not body.get("filename") or length <= 0:
                return 200, {}, {"ok": False, "error": "invalid_arguments"}
            file_id = f"F{next(self._files):08d}"
            host, port = self.server.server_address[:2]
            with self._lock:
                self.uploads[file_id] = {
                    "filename": body["filename"],
                    "length": length,
                    "alt_txt": body.get("alt_txt"),
                    "data": None,
                }
            return (
                200,
                {},
                {
                    "ok": True,
                    "file_id": file_id,
                    "upload_url": f"http://{host!s}:{port}/upload/{file_id}",
                },
            )
        if method == "files.completeUploadExternal":
            files = body.get("files")
            if not isinstance(files, list) or not files:
                return 200, {}, {"ok": False, "error": "invalid_arguments"}
            shared = []
            with self._lock:
                for f in files:
                    upload = self.uploads.get(str(f.get("id")))
                    if upload is None or upload["data"] is None:
                        return 200, {}, {"ok": False, "error": "file_not_found"}
                    shared.append(
                        {
                            "id": f["id"],
                            "title": f.get("title") or upload["filename"],
                            "name": upload["filename"],
                            "alt_txt": upload["alt_txt"],
                            "size": len(upload["data"]),
                            "data": upload["data"],
                            "channel": body.get("channel_id"),
                            "thread_ts": body.get("thread_ts"),
                            "initial_comment": body.get("initial_comment"),
                        }
                    )
                self.files.extend(shared)
                if body.get("channel_id"):
                    ts = self._next_ts()
                    self.messages[(body["channel_id"], ts)] = {
                        "type": "message",
                        "ts": ts,
                        "text": body.get("initial_comment") or "",
                        "bot_id": BOT_ID,
                        "user": BOT_USER_ID,
                        "files": [{k: v for k, v in f.items() if k != "data"} for f in shared],
                        "thread_ts": body.get("thread_ts"),
                    }
            public = [
                {k: v for k, v in f.items() if k not in {"data", "channel", "thread_ts"}}
                for f in shared
            ]
            return 200, {}, {"ok": True, "files": public}
        if method.startswith("response/"):
            return 200, {}, {"ok": True}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def _upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        with self._lock:
            self.calls.append(Call("upload", {"file_id": file_id, "bytes": len(data)}, None))
            upload = self.uploads.get(file_id)
            if upload is None:
                return 404, "unknown upload url"
            if len(data) != upload["length"]:
                return 400, f"length mismatch: said {upload['length']}, sent {len(data)}"
            upload["data"] = data
        return 200, f"OK - {len(data)}"

    # -- for the demo's transcript ------------------------------------------------------------
    def roots(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages the bot posted in ``channel``, oldest first."""
        with self._lock:
            msgs = [
                m for (c, _), m in self.messages.items() if c == channel and not m.get("thread_ts")
            ]
        return sorted(msgs, key=lambda m: m["ts"])

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        with self._lock:
            msgs = [
                m
                for (c, _), m in self.messages.items()
                if c == channel and (m["ts"] == ts or m.get("thread_ts") == ts)
            ]
        return sorted(msgs, key=lambda m: (m["ts"] != ts, m["ts"]))


def _block_text(value: Any) -> int:
    """The characters of text across a message's blocks (what ``msg_blocks_too_long`` counts)."""
    if isinstance(value, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _block_text(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_block_text(v) for v in value)
    return 0
