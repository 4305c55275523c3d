"""A real HTTP server on 127.0.0.1 for download tests: images, errors, stalls, drips, redirects."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[["_Handler", int], None]  # (handler, hit number starting at 1)


class ImageServer:
    """Serves registered routes on an ephemeral port and counts hits and body bytes sent."""

    def __init__(self) -> None:
        self.routes: dict[str, Responder] = {}
        self.hits: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()  # wakes sleeping and dripping handlers
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _hit(self, path: str) -> int:
        with self._lock:
            self.hits[path] += 1
            return self.hits[path]

    # Route builders: each returns the full URL of the route.
    def add(self, path: str, body: bytes, content_type: str = "image/jpeg", delay: float = 0):
        """Serve `body` with status 200 (after `delay` seconds)."""

        def respond(h: _Handler, hit: int) -> None:
            if delay and self.stopping.wait(delay):
                return
            h.send_body(200, body, content_type)

        return self._add(path, respond)

    def add_status(self, path: str, status: int, *, then: bytes | None = None, times: int = 0):
        """Answer `status`; with `then`, only the first `times` hits fail, later ones get it."""

        def respond(h: _Handler, hit: int) -> None:
            if then is not None and hit > times:
                h.send_body(200, then, "image/jpeg")
            else:
                h.send_body(status, b"error page", "text/html")

        return self._add(path, respond)

    def add_stall(self, path: str, seconds: float):
        """Accept the request, then say nothing for `seconds` (a read timeout must fire)."""
        return self._add(path, lambda h, hit: self.stopping.wait(seconds))

    def add_drip(self, path: str, interval: float, limit: float = 20.0):
        """Send one byte of a promised megabyte every `interval` seconds, for up to `limit`."""

        def respond(h: _Handler, hit: int) -> None:
            h.send_head(200, "image/jpeg", 1_000_000)
            end = time.monotonic() + limit
            while time.monotonic() < end and not self.stopping.wait(interval):
                if not h.write(path, b"\xff"):
                    return

        return self._add(path, respond)

    def add_huge(self, path: str, size: int, *, declare_length: bool):
        """Stream `size` bytes of a JPEG-looking body, with or without a Content-Length."""

        def respond(h: _Handler, hit: int) -> None:
            h.send_head(200, "image/jpeg", size if declare_length else None)
            chunk = b"\xff\xd8\xff" + bytes(64 * 1024 - 3)
            for _ in range(size // len(chunk)):
                if not h.write(path, chunk):
                    return

        return self._add(path, respond)

    def add_redirect(self, path: str, to: str, status: int = 302):
        """Redirect to the path `to` on this server."""

        def respond(h: _Handler, hit: int) -> None:
            h.send_response(status)
            h.send_header("Location", to)
            h.send_header("Content-Length", "0")
            h.end_headers()

        return self._add(path, respond)

    def _add(self, path: str, respond: Responder) -> str:
        self.routes[path] = respond
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: no keep-alive surprises

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        owner: ImageServer = self.server.owner  # type: ignore[attr-defined]
        respond = owner.routes.get(self.path)
        hit = owner._hit(self.path)
        if respond is None:
            self.send_body(404, b"not found", "text/html")
            return
        # The client giving up mid-response is what several tests are about.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            respond(self, hit)

    def send_head(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_head(status, content_type, len(body))
        self.write(self.path, body)

    def write(self, path: str, data: bytes) -> bool:
        """Send `data`, count it, and say whether the client is still listening."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False
        owner: ImageServer = self.server.owner  # type: ignore[attr-defined]
        with owner._lock:
            owner.bytes_sent[path] += len(data)
        return True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output clean
