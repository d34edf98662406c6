"""A loopback HTTP server that misbehaves on request: the faults real proxies and servers show."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class BadServer:
    """``mode``: html, error, notjson, unauthorized, hang, ok (``body`` answered as JSON).
    Records every request's headers so tests can check what reached the server."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.body: object = {}
        self.requests: list[dict[str, str]] = []
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                payload = self.rfile.read(length).decode() if length else ""
                owner.requests.append({**dict(self.headers), "path": self.path, "body": payload})
                if owner.mode == "hang":
                    owner.release.wait(30)
                    return
                status, ctype, text = 200, "application/json", json.dumps(owner.body)
                if owner.mode == "html":
                    status, ctype = 502, "text/html"
                    text = "<html><body>Bad Gateway</body></html>"
                elif owner.mode == "error":
                    status = 422
                    text = json.dumps(
                        {
                            "status": "error",
                            "errorType": "execution",
                            "error": 'unknown function "x"',
                        }
                    )
                elif owner.mode == "notjson":
                    ctype, text = "text/plain", "hello"
                elif owner.mode == "unauthorized":
                    status, text = 401, json.dumps({"status": "error", "error": "unauthorized"})
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
