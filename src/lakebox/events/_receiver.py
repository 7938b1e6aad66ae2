"""A tiny webhook receiver for demos and tests: records each POST, checks its signature.

In a thread (the demo)::

    with Receiver(secret="s3cret") as receiver:
        ws.webhooks.create([...], http_url_spec={"url": receiver.url, "secret": "s3cret"})
        ...
        receiver.received        # list of dicts: event_id, valid, body, attempt

As a process (tests)::

    python -m lakebox.events._receiver --port 8123 --out received.jsonl --secret s3cret
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lakebox.events._delivery import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature

__all__ = ["Receiver"]


class Receiver:
    """An HTTP server on a free loopback port recording webhook calls.

    Args:
        secret: check ``X-Databricks-Signature`` against this secret.
        status: HTTP status to answer with (500 simulates a failing receiver).
        out: also append each call as a JSON line to this file.
        port: port to bind; 0 picks a free one.
        delay: seconds to wait before answering.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        status: int = 200,
        out: str | None = None,
        port: int = 0,
        delay: float = 0.0,
    ) -> None:
        self.secret = secret
        self.status = status
        self.out = out
        self.delay = delay
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signature = self.headers.get(SIGNATURE_HEADER)
                valid = (
                    verify_signature(receiver.secret, body, signature or "")
                    if receiver.secret
                    else signature is None
                )
                record = {
                    "event_id": self.headers.get(EVENT_ID_HEADER),
                    "attempt": self.headers.get("X-Lakebox-Delivery-Attempt"),
                    "valid": valid,
                    "authorization": self.headers.get("Authorization"),
                    "body": json.loads(body or b"null"),
                    "at": time.time(),
                }
                receiver._record(record)
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = json.dumps({"ok": receiver.status < 300}).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(record)
            if self.out:
                with open(self.out, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
                    fh.flush()

    def start(self) -> Receiver:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` calls arrived (or ``timeout``); returns the calls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.01)
        return list(self.received)

    def stop(self) -> None:
        """Stop serving."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Record webhook calls as JSON lines.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--secret")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    receiver = Receiver(
        secret=args.secret, status=args.status, out=args.out, port=args.port, delay=args.delay
    )
    receiver._server.serve_forever()


if __name__ == "__main__":
    main()
