"""Local fake SMS provider for the dev/test stack: every accepted message becomes one JSON file.

Listens on 127.0.0.1:$FEDELTA_SMS_PORT (default 8026) and answers what the notifications
service's SMS adapter calls:

``POST /v1/messages``  with ``Authorization: Bearer <any token>`` and a JSON body
``{"to", "text", "reference"}``: 202 and ``{"id"}``, after writing
``$FEDELTA_SMS_DIR/<UTC timestamp>-<sequence>-<uuid>.json`` holding the body, the
``Idempotency-Key`` header and the time received. Names sort by arrival; files are written
under a dot-prefixed temporary name and renamed into place, so a reader that globs ``*.json``
never sees a partial one. 401 without a bearer token, 400 for a body that is not such JSON.

Failing on demand, for tests of retries: ``PUT /v1/failures/<phone number>`` with
``{"count": N, "status": 503}`` makes the next N messages to that number answer that status
(nothing is recorded for them); ``DELETE /v1/failures/<phone number>`` forgets it.

Run: ``.venv/bin/python deploy/local/smscatcher.py [--host H] [--port P] [--sms-dir D]``
(normally through deploy/local/smscatcher.sh). Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import signal
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote

LOG = logging.getLogger("smscatcher")
REPO_ROOT = Path(__file__).resolve().parents[2]
MESSAGES_PATH = "/v1/messages"
FAILURES_PREFIX = "/v1/failures/"
MAX_BODY_BYTES = 64 * 1024


class SmsStore:
    """The messages received, as files, and the failures asked for, per phone number."""

    def __init__(self, sms_dir: Path) -> None:
        self.sms_dir = sms_dir
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, int]] = {}  # number -> (remaining, status)

    def fail_next(self, number: str, count: int, status: int) -> None:
        with self._lock:
            if count > 0:
                self._failures[number] = (count, status)
            else:
                self._failures.pop(number, None)

    def failure_for(self, number: str) -> int | None:
        """The status to answer instead of accepting, while failures are asked for."""
        with self._lock:
            remaining, status = self._failures.get(number, (0, 0))
            if remaining <= 0:
                return None
            if remaining == 1:
                del self._failures[number]
            else:
                self._failures[number] = (remaining - 1, status)
            return status

    def store(self, message: dict[str, Any]) -> Path:
        with self._lock:
            sequence = next(self._sequence)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{sequence:06d}-{uuid.uuid4().hex}.json"
        self.sms_dir.mkdir(parents=True, exist_ok=True)
        final = self.sms_dir / name
        tmp = self.sms_dir / f".{name}.tmp"
        try:
            # Owner-only whatever the umask: a message holds a phone number.
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                json.dump(message, f, ensure_ascii=False, indent=2)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final


def make_handler(store: SmsStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "fedelta-smscatcher"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line has phone numbers in it: logged below, without them

        def _answer(self, status: int, body: dict[str, Any] | None = None) -> None:
            raw = json.dumps(body or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _json_body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError("body too large")
            return json.loads(self.rfile.read(length) or b"null")

        def do_POST(self) -> None:
            if self.path != MESSAGES_PATH:
                self._answer(404, {"error": "not found"})
                return
            authorization = self.headers.get("Authorization") or ""
            if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
                self._answer(401, {"error": "a bearer token is required"})
                return
            try:
                body = self._json_body()
                to, text = body["to"], body["text"]
                if not (isinstance(to, str) and isinstance(text, str) and to and text):
                    raise ValueError("to and text must be non-empty strings")
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"error": "expected JSON {to, text, reference}"})
                return
            failure = store.failure_for(to)
            if failure is not None:
                LOG.info("failing a message on demand with %d", failure)
                self._answer(failure, {"error": "failing on demand"})
                return
            message_id = uuid.uuid4().hex
            path = store.store(
                {
                    "id": message_id,
                    "to": to,
                    "text": text,
                    "reference": body.get("reference"),
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "received_at": datetime.now(UTC).isoformat(),
                }
            )
            LOG.info("stored %s", path.name)
            self._answer(202, {"id": message_id})

        def do_PUT(self) -> None:
            if not self.path.startswith(FAILURES_PREFIX):
                self._answer(404, {"error": "not found"})
                return
            try:
                body = self._json_body()
                count, status = int(body["count"]), int(body.get("status", 503))
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"error": "expected JSON {count, status}"})
                return
            store.fail_next(unquote(self.path[len(FAILURES_PREFIX) :]), count, status)
            self._answer(200, {"count": count, "status": status})

        def do_DELETE(self) -> None:
            if not self.path.startswith(FAILURES_PREFIX):
                self._answer(404, {"error": "not found"})
                return
            store.fail_next(unquote(self.path[len(FAILURES_PREFIX) :]), 0, 0)
            self._answer(200, {})

    return Handler


def serve(host: str, port: int, sms_dir: Path) -> None:
    server = ThreadingHTTPServer((host, port), make_handler(SmsStore(sms_dir)))
    server.daemon_threads = True

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    LOG.info("listening on %s:%d, storing messages in %s", host, port, sms_dir)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        LOG.info("stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    state_dir = Path(os.environ.get("FEDELTA_STATE_DIR") or REPO_ROOT / ".fedelta")
    parser = argparse.ArgumentParser(description="Local fake SMS provider writing .json files.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FEDELTA_SMS_PORT", "8026")))
    parser.add_argument(
        "--sms-dir",
        type=Path,
        default=Path(os.environ.get("FEDELTA_SMS_DIR") or state_dir / "sms"),
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.umask(0o077)  # whatever this process creates is for its owner only
    sms_dir: Path = args.sms_dir.resolve()
    sms_dir.mkdir(parents=True, exist_ok=True)
    sms_dir.chmod(0o700)
    serve(args.host, args.port, sms_dir)


if __name__ == "__main__":
    main()
