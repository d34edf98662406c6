"""A loopback HTTP server that misbehaves on request: the faults real proxies and servers show."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_STEP = 0.2  # seconds between bytes of a slow answer: far below any per-read timeout


class BadServer:
    """``mode``: html, error, notjson, unauthorized, hang, status (``status`` with ``body``), ok
    (``body`` answered as JSON), and the byte-level faults in ``_raw``: slowheaders, slowbody,
    cut, reset, close, badgzip, redirect, empty, huge, hugechunked, gzipbomb, echo, echotext,
    metrics (``text`` as /metrics).
    Records every request's headers so tests can check what reached the server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mode = "ok"
        self.body: object = {}
        self.text: str | bytes = ""  # the body of "metrics"
        self.size = 0  # the body size of "huge" and "hugechunked"
        self.location = "http://127.0.0.1:1/elsewhere"  # where "redirect" points
        self.redirect_status = 307
        self.status = 200  # the HTTP status of mode "status"
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
                if owner.mode in RAW:
                    with contextlib.suppress(OSError):
                        _raw(owner, self)
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
                elif owner.mode == "status":  # ``status`` with ``body`` as JSON
                    status = owner.status
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


RAW = {
    "slowheaders",
    "slowbody",
    "cut",
    "reset",
    "close",
    "badgzip",
    "redirect",
    "empty",
    "huge",
    "hugechunked",
    "gzipbomb",
    "echo",
    "echotext",
    "metrics",
}


def _raw(owner: BadServer, h: BaseHTTPRequestHandler) -> None:
    """Writes the answer byte by byte as a broken server would."""
    w, mode = h.wfile, owner.mode
    if mode == "close":
        return  # no answer at all: the connection just closes
    if mode == "slowheaders":
        w.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(300):  # bounded: 60 s at most, and the client hangs up long before
            if owner.release.wait(SLOW_STEP):
                return
            w.write(b"x")
        return
    if mode == "slowbody":
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5000\r\n\r\n")
        for _ in range(300):
            if owner.release.wait(SLOW_STEP):
                return
            w.write(b"#")
        return
    if mode == "cut":
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 900\r\n")
        w.write(b'\r\n{"status": "succ')
        return
    if mode == "reset":  # half an answer, then a TCP reset (SO_LINGER 0) instead of a close
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 900\r\n")
        w.write(b"\r\n{")
        time.sleep(0.1)
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
        return
    if mode == "badgzip":
        junk = b"\x1f\x8b\x08\x00this is not gzip at all" * 4
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n")
        w.write(f"content-length: {len(junk)}\r\n\r\n".encode() + junk)
        return
    if mode == "redirect":
        head = f"HTTP/1.1 {owner.redirect_status} Moved\r\nlocation: {owner.location}\r\n"
        w.write(head.encode())
        w.write(b"content-type: application/json\r\ncontent-length: 0\r\n\r\n")
        return
    if mode == "empty":
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n")
        return
    if mode == "gzipbomb":  # a few KiB on the wire, ``size`` bytes once decompressed
        packed = gzip.compress(b"0" * owner.size)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n")
        w.write(f"content-length: {len(packed)}\r\n\r\n".encode() + packed)
        return
    if mode in ("huge", "hugechunked"):
        line = b'vllm:num_requests_waiting{model_name="m"} 1\n'
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
        if mode == "huge":
            w.write(head + f"content-length: {owner.size}\r\n\r\n".encode())
        else:
            w.write(head + b"transfer-encoding: chunked\r\n\r\n")
        sent = 0
        while sent < owner.size:
            chunk = line * min(2000, (owner.size - sent) // len(line) + 1)
            chunk = chunk[: owner.size - sent]
            w.write(chunk if mode == "huge" else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        if mode == "hugechunked":
            w.write(b"0\r\n\r\n")
        return
    # The request's headers, echoed in a body: what a debugging proxy or a chatty server does.
    seen = "; ".join(f"{k}: {v}" for k, v in h.headers.items())
    if mode == "echo":  # a Prometheus-style error quoting the request
        body = json.dumps({"status": "error", "errorType": "bad_data", "error": seen}).encode()
        status, ctype = "400 Bad Request", "application/json"
    elif mode == "echotext":  # /metrics whose one bad line quotes the request
        body = f"# a comment\nbad line {seen}\n".encode()
        status, ctype = "200 OK", "text/plain"
    else:  # metrics
        text = owner.text
        body = text if isinstance(text, bytes) else text.encode()
        status, ctype = "200 OK", "text/plain; version=0.0.4"
    w.write(f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n".encode())
    w.write(f"content-length: {len(body)}\r\n\r\n".encode() + body)
