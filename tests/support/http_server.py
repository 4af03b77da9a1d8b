"""A real HTTP server on loopback that serves one file with Range support and can cut a transfer short."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer:
    """Serves `path` at /<name>. `cut_after` bytes into a response the connection is dropped, once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cut_after: int | None = None
        self.honour_range = True
        self.requests: list[str | None] = []  # Range header of every request, in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/" + server.path.name:
                    self.send_error(404)
                    return
                data = server.path.read_bytes()
                wanted = self.headers.get("Range")
                server.requests.append(wanted)
                if not server.honour_range:
                    wanted = None
                start = int(wanted.split("=")[1].rstrip("-")) if wanted else 0
                if start >= len(data) and wanted:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if wanted else 200)
                if wanted:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if server.cut_after is not None:
                    cut, server.cut_after = server.cut_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the link goes down mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{self.path.name}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
