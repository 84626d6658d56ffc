"""Local fakes of the SMS vendors: tiny HTTP servers on 127.0.0.1 that record every request.

Each fake answers with its vendor's documented reply for the current ``mode``:

- ``ok``: the documented success body;
- ``fail``: a 503 (the vendor down);
- ``slow``: sleep ``delay`` seconds, then succeed (past a short client timeout);
- ``bad_number``: the vendor's documented "invalid / unreachable number" reply;
- ``drop``: close the connection without answering;
- any other key of the vendor's ``REPLIES`` entry (``auth``, ``throttled``, ``bad_sender``...).

No fake ever sends anything anywhere: they only record what they receive.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """A canned answer: status and JSON body (``None`` for an empty body)."""

    status: int
    body: Any = None
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode("utf-8")


# The vendors' documented replies (see each adapter's docstring for the reference page).
REPLIES: Mapping[str, Mapping[str, Reply]] = {
    "twilio": {
        "ok": Reply(
            201,
            {
                "sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
                "status": "queued",
                "to": "+6421000001",
                "from": "+15017122661",
                "error_code": None,
            },
        ),
        "bad_number": Reply(
            400,
            {
                "code": 21211,
                "message": "The 'To' number is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        ),
        "not_mobile": Reply(400, {"code": 21614, "message": "'To' number is not a valid mobile number", "status": 400}),
        "opted_out": Reply(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}),
        "region": Reply(
            400, {"code": 21408, "message": "Permission to send an SMS has not been enabled", "status": 400}
        ),
        "bad_sender": Reply(
            400, {"code": 21212, "message": "The 'From' number is not a valid phone number", "status": 400}
        ),
        "too_long": Reply(
            400, {"code": 21617, "message": "The concatenated message body exceeds the 1600 character limit"}
        ),
        "unreachable": Reply(
            400, {"code": 21612, "message": "The 'To' phone number is not currently reachable", "status": 400}
        ),
        "auth": Reply(401, {"code": 20003, "message": "Authenticate", "status": 401}),
        "throttled": Reply(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        "fail": Reply(503, {"code": 20500, "message": "Service Unavailable", "status": 503}),
    },
    "bird": {
        "ok": Reply(
            202,
            {
                "id": "7f6dc9a0-4a63-4e4f-8a6a-bb9a2d0e8f11",
                "channelId": "a1405560-c8d3-4b1a-877d-3f449ad95352",
                "status": "accepted",
            },
        ),
        "bad_number": Reply(
            422,
            {
                "code": "InvalidPayload",
                "message": "The request did not pass validation",
                "details": {"receiver.contacts.0.identifierValue": ["must be a valid phone number"]},
            },
        ),
        "invalid_body": Reply(
            422,
            {
                "code": "InvalidPayload",
                "message": "The request did not pass validation",
                "details": {"body.text.text": ["too long"]},
            },
        ),
        "auth": Reply(401, {"code": "Unauthorized", "message": "Invalid access key"}),
        "not_found": Reply(404, {"code": "NotFound", "message": "Channel not found"}),
        "throttled": Reply(429, {"code": "TooManyRequests", "message": "Rate limit exceeded"}),
        "fail": Reply(503, {"code": "ServiceUnavailable", "message": "Try again later"}),
    },
    "messagemedia": {
        "ok": Reply(
            202,
            {
                "messages": [
                    {
                        "message_id": "04fe9a97-a579-43c5-bb1a-58ed29bf0a6a",
                        "status": "queued",
                        "format": "SMS",
                        "destination_number": "+61491570156",
                    }
                ]
            },
        ),
        "bad_number": Reply(
            400,
            {"message": "Invalid message request", "details": ["messages.0.destination_number: invalid number"]},
        ),
        "bad_source": Reply(
            400, {"message": "Invalid message request", "details": ["messages.0.source_number: not permitted"]}
        ),
        "bad_content": Reply(
            400, {"message": "Invalid message request", "details": ["messages.0.content: exceeds maximum length"]}
        ),
        "auth": Reply(401, {"message": "Unauthorized"}),
        "disabled": Reply(403, {"message": "Feature not enabled"}),
        "fail": Reply(503, {"message": "Internal Server Error"}),
    },
    "tnz": {
        "ok": Reply(200, {"Result": "Success", "MessageID": "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"}),
        "bad_number": Reply(
            400, {"Result": "Failed", "ErrorMessage": ["Error - Could not find any valid destination(s)."]}
        ),
        "auth": Reply(401, {"Result": "Failed", "ErrorMessage": ["Unauthorized"]}),
        "missing_data": Reply(200, {"Result": "Failed", "ErrorMessage": ["Missing message data"]}),
        "fail": Reply(500, {"Result": "Failed", "ErrorMessage": ["Error occurred while creating job"]}),
    },
    "modica": {
        "ok": Reply(201, [4711]),
        "bad_number": Reply(400, {"error": "invalid_attrib", "error_description": "Invalid destination"}),
        "bad_mask": Reply(400, {"error": "invalid_attrib", "error_description": "Invalid mask"}),
        "bad_content": Reply(400, {"error": "invalid_attrib", "error_description": "Invalid content"}),
        "missing": Reply(400, {"error": "missing_attrib", "error_description": "content is required"}),
        "auth": Reply(401, None),
        "fail": Reply(500, {"error": "send_failed", "error_description": "Unable to queue message"}),
    },
    "vonage": {
        "ok": Reply(
            200,
            {
                "message-count": "1",
                "messages": [
                    {
                        "to": "447700900000",
                        "message-id": "0A0000000123ABCD1",
                        "status": "0",
                        "remaining-balance": "3.14159265",
                        "message-price": "0.03330000",
                        "network": "12345",
                    }
                ],
            },
        ),
        "bad_number": Reply(
            200, {"message-count": "1", "messages": [{"status": "6", "error-text": "Invalid Message"}]}
        ),
        "barred": Reply(200, {"message-count": "1", "messages": [{"status": "7", "error-text": "Number barred"}]}),
        "deactivated": Reply(
            200, {"message-count": "1", "messages": [{"status": "33", "error-text": "Number de-activated"}]}
        ),
        "throttled": Reply(200, {"message-count": "1", "messages": [{"status": "1", "error-text": "Throttled"}]}),
        "auth": Reply(200, {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]}),
        "demo": Reply(
            200, {"message-count": "1", "messages": [{"status": "29", "error-text": "Non White-listed Destination"}]}
        ),
        "too_long": Reply(
            200, {"message-count": "1", "messages": [{"status": "12", "error-text": "Message too long"}]}
        ),
        "bad_sender": Reply(
            200, {"message-count": "1", "messages": [{"status": "15", "error-text": "Invalid Sender Address"}]}
        ),
        "fail": Reply(500, None),
    },
    "webhook": {
        "ok": Reply(200, {"messageId": "wh-0001"}),
        "bad_number": Reply(422, {"code": "INVALID_PHONE_NUMBER"}),
        "bad_request": Reply(400, {"code": "SOMETHING_ELSE"}),
        "bad_sender": Reply(422, {"code": "INVALID_SENDER_ID"}),
        "bad_message": Reply(422, {"code": "INVALID_MESSAGE"}),
        "auth": Reply(401, None),
        "fail": Reply(502, None),
    },
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request exactly as the fake received it (header names lower-cased)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


@dataclass
class FakeVendor:
    """One vendor's fake server. Set ``mode`` (and ``delay`` for ``slow``) before a request."""

    name: str
    mode: str = "ok"
    delay: float = 1.0
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.name} fake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
        self.mode, self.delay = "ok", 1.0

    def start(self) -> FakeVendor:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"fake-{self.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def reply(self) -> Reply | None:
        """The reply for the current mode; None means drop the connection."""
        if self.mode == "drop":
            return None
        if self.mode == "slow":
            time.sleep(self.delay)
            return REPLIES[self.name]["ok"]
        return REPLIES[self.name][self.mode]


def _handler_for(vendor: FakeVendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            vendor.record(RecordedRequest("POST", self.path, headers, body))
            reply = vendor.reply()
            if reply is None:
                self.close_connection = True
                return
            payload = reply.encoded()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (its timeout): nothing to answer.
                pass

        def log_message(self, format: str, *args: Any) -> None:
            # Requests carry codes; the fakes keep them in memory for assertions, never in logs.
            return

    return Handler


@contextmanager
def running(*names: str) -> Iterator[dict[str, FakeVendor]]:
    """Start fakes for ``names`` (default: every vendor) and stop them afterwards."""
    fakes = {name: FakeVendor(name).start() for name in (names or tuple(REPLIES))}
    try:
        yield fakes
    finally:
        for fake in fakes.values():
            fake.stop()


def endpoints(fakes: Mapping[str, FakeVendor]) -> str:
    """The ``SMS_PROVIDER_ENDPOINTS`` value that points every adapter at its fake."""
    return ",".join(f"{name}={fake.url}" for name, fake in fakes.items())
