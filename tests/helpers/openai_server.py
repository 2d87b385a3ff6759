"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

``GET /v1/models`` lists one model (with vLLM's ``max_model_len`` when ``context`` is given);
``POST /v1/chat/completions`` streams server-sent events (HTTP/1.1, chunked). Each request takes the next
:class:`Reply` from :attr:`LoopbackServer.replies`, else :attr:`LoopbackServer.default`. A reply can be an
error status with a body and headers, or a stream that breaks after a number of events (the connection is
dropped mid-body, optionally after half an event). ``service_time`` and ``slots`` make it behave like an
inference server: each request takes that long, at most ``slots`` at once, the others wait their turn.
:meth:`LoopbackServer.fail` makes it die mid-run: open streams break and new connections are refused.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGE_TEXT = (
    "# Delivery note 7\n",
    "\n",
    "| Item | Qty |\n",
    "|---|---|\n",
    "| Bolts | 12 |\n",
    "| Nuts | 40 |\n",
    "\n",
    "Received in good order.",
)
"""The default answer, one event per piece."""


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        status: the HTTP status; 200 streams ``chunks``.
        body: the body of an error answer (JSON when a dict).
        headers: extra headers (``Retry-After``).
        chunks: the text pieces streamed as events.
        break_after: drop the connection after this many events (``None``: finish normally).
        torn: with ``break_after``, first send half of the next event.
        finish: the finish reason of the last event.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: tuple[str, ...] = PAGE_TEXT
    break_after: int | None = None
    torn: bool = False
    finish: str = "stop"


class LoopbackServer:
    """The server; a context manager that starts it in a thread and stops it.

    Attributes:
        url: its OpenAI base URL (``http://127.0.0.1:PORT/v1``).
        requests: the JSON bodies of the chat requests received, in order.
        peak: the most requests it served at once.
    """

    def __init__(
        self, model: str = "m", *, context: int | None = None, service_time: float = 0.0, slots: int = 64
    ) -> None:
        self.model, self.context, self.service_time = model, context, service_time
        self.replies: list[Reply] = []
        self.default = Reply()
        self.answer: Callable[[tuple[int, int]], tuple[str, ...]] | None = None
        """Chunks to answer for a page of (width, height) pixels, in place of the reply's own."""
        self.gate: threading.Event | None = None
        """When set to an event, every streamed answer waits for it (after counting as active)."""
        self.requests: list[dict[str, Any]] = []
        self.peak = 0
        self._active = 0
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(slots)
        self._dead = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.fail()

    def fail(self) -> None:
        """Die: refuse new connections and break the streams under way."""
        if self._dead.is_set():
            return
        self._dead.set()
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            return self.replies.pop(0) if self.replies else self.default

    def _enter(self) -> None:
        with self._lock:
            self._active += 1
            self.peak = max(self.peak, self._active)

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1


class _QuietServer(ThreadingHTTPServer):
    """A client that closes a kept-alive connection is normal here: not worth a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else str(body or "")).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            entry: dict[str, Any] = {"id": server.model, "object": "model"}
            if server.context is not None:
                entry["max_model_len"] = server.context
            self._send(200, {"object": "list", "data": [entry]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = server._next_reply(body)
            if reply.status != 200:
                self._send(reply.status, reply.body, reply.headers)
                return
            with server._slots:
                server._enter()
                try:
                    if server.gate is not None:
                        server.gate.wait(30)
                    if server.service_time:
                        time.sleep(server.service_time)
                    if server.answer is not None:
                        reply = Reply(chunks=server.answer(_image_size(body)))
                    self._stream(reply)
                finally:
                    server._leave()

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [_event({"choices": [{"index": 0, "delta": {"content": c}}]}) for c in reply.chunks]
            events.append(_event({"choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish}]}))
            events.append(_event("[DONE]"))
            for index, event in enumerate(events):
                if server._dead.is_set() or index == reply.break_after:
                    if reply.torn and index < len(events):
                        self._chunk(event[: len(event) // 2])
                    self._drop()
                    return
                self._chunk(event)
            self.wfile.write(b"0\r\n\r\n")

        def _drop(self) -> None:
            """End the connection mid-body, as a crashed or restarted server does."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def _image_size(body: dict[str, Any]) -> tuple[int, int]:
    """(width, height) in pixels of the PNG data URL in a chat request (from its IHDR chunk)."""
    import base64

    content = body["messages"][0]["content"]
    url = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
    header = base64.b64decode(url.split(",", 1)[1][:64])
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
