"""A real HTTP server on loopback that misbehaves on request: it trickles, redirects,
answers 304, compresses, fails with 5xx, and records what it was asked.

Every response is bounded in bytes and time, and the server stops with the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: A route: given the request's headers, return (status, headers, body chunks).
Route = Callable[[dict[str, str]], tuple[int, dict[str, str], Iterator[bytes]]]


@dataclass
class Site:
    """The routes a test server answers, and the requests it saw."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    host: str = "127.0.0.1"

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, body: bytes, **headers: str) -> None:
        """Answer ``path`` with 200 and ``body``."""
        self.routes[path] = lambda _h: (200, headers, iter([body]))


class _Handler(BaseHTTPRequestHandler):
    site: Site

    def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.site.requests.append((self.path, headers))
        route = self.site.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        status, extra, chunks = route(headers)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            return  # the client hung up: that is what some tests want

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@contextmanager
def http_site(host: str = "127.0.0.1") -> Iterator[Site]:
    """Run a test web server on a free port of ``host``; yield its site."""
    site = Site(host=host)
    handler = type("Handler", (_Handler,), {"site": site})
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def trickle(data: bytes, every: float, *, limit: float = 30.0) -> Iterator[bytes]:
    """One byte every ``every`` seconds, for ``limit`` seconds at most."""
    ends = time.monotonic() + limit
    for byte in data:
        if time.monotonic() > ends:
            return
        yield bytes([byte])
        time.sleep(every)
