"""A real HTTP receiver on loopback for the webhook tests: it records every POST (headers and
body) and answers each with the next scripted status, then 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.posts.append(
                        (self.headers, body)
                    )  # names read case-insensitively, as HTTP has them
                    status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/T000/B000/secretpart"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, status: int, **headers: str) -> None:
        self.answers.append((status, headers))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.posts]

    def keys(self) -> list[str]:
        return [headers["Idempotency-Key"] for headers, _ in self.posts]


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = True  # plain http to loopback, as under DEBUG
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()
