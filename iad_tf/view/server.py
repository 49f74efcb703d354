"""Serve a :func:`~iad_tf.view.site.build_site` map on loopback: exactly those paths, by
exact lookup (no directory listing, no file system path is ever built from a request), GET
and HEAD only, single byte ranges for audio seeking, and only for a Host header naming the
loopback address (a web page elsewhere cannot reach it by DNS rebinding). TF-free."""

from __future__ import annotations

import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from iad_tf.view.site import Resource

HOST = "127.0.0.1"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class ViewServer(ThreadingHTTPServer):
    """``ViewServer(site)`` listens on 127.0.0.1 at a free port (``.url``)."""

    daemon_threads = True

    def __init__(self, site: dict[str, Resource], port: int = 0) -> None:
        self.site = dict(site)
        super().__init__((HOST, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "iad-tf-view"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def _lookup(self) -> Resource | None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in (HOST, "localhost"):
            self.send_error(HTTPStatus.FORBIDDEN, "only loopback host names are served")
            return None
        path = unquote(urlsplit(self.path).path)
        key = "index.html" if path == "/" else path[1:] if path.startswith("/") else None
        res = self.server.site.get(key) if key else None
        if res is None:
            self.send_error(HTTPStatus.NOT_FOUND)
        return res

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        res = self._lookup()
        if res is None:
            return
        data = res.read()
        status, start, end = HTTPStatus.OK, 0, len(data)
        match = _RANGE.match(self.headers.get("Range") or "")
        if match and (match.group(1) or match.group(2)):
            a, b = match.group(1), match.group(2)
            start = int(a) if a else max(0, len(data) - int(b))
            end = min(len(data), int(b) + 1) if a and b else len(data)
            if start >= len(data) or start >= end:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Content-Type", res.content_type)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        # cross-origin isolation: lets the page use LiteRT.js's threaded WASM build
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.end_headers()
        if body:
            self.wfile.write(data[start:end])
