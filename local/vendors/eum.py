"""A local fake of AWS End User Messaging SMS (``pinpoint-sms-voice-v2``): ``SendTextMessage`` and
``PutMessageFeedback`` over the service's JSON 1.0 protocol, on 127.0.0.1.

It checks each request the way the service does and records it for tests (``requests``, ``problems``):

- the protocol: ``POST /``, ``Content-Type: application/x-amz-json-1.0``, ``X-Amz-Target:
  PinpointSMSVoiceV2.<Operation>``, and a SigV4 ``Authorization`` for service ``sms-voice`` whose signature
  verifies under ``credentials`` (access key to secret key; ``testing``/``testing`` unless told) and, when
  ``region`` is set, that region. A request that breaks one is answered like the service
  (``UnknownOperationException``, ``SerializationException``, ``MissingAuthenticationTokenException``,
  ``UnrecognizedClientException``, ``InvalidSignatureException``) and listed in ``problems``: a test that
  expects a well-formed client asserts that list is empty.
- every member against the model's constraints (required members, lengths, patterns, enums, ranges, map
  sizes, unknown members), answered with a ``ValidationException`` carrying ``Reason`` and ``Fields`` (and, as
  the service does, the offending value in its message).

Then it answers with the current ``mode`` (``feedback_mode`` for ``PutMessageFeedback``):

- ``ok``: ``{"MessageId": <uuid>}`` (a feedback for a message it never sent: ``ResourceNotFoundException``);
- ``slow``: take the request, then answer only after ``delay`` seconds; ``drop``: close the connection unanswered;
- any key of :data:`ERRORS` (``throttled``, ``internal``, ``spend_limit``, ``opted_out``, ``bad_number``...):
  that documented error.

botocore surfaces an error's ``Reason``, ``Fields``, ``ResourceType`` and ``ResourceId`` at the top level of
``ClientError.response``. No fake ever sends anything anywhere: it only records what it receives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "PinpointSMSVoiceV2"
SEND = "SendTextMessage"
FEEDBACK = "PutMessageFeedback"
SIGNING_NAME = "sms-voice"
_NAMESPACE = "com.amazonaws.pinpointsmsvoicev2#"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s,]+)/(?P<date>[0-9]{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")


# -- the model's constraints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A string member: length bounds and a pattern the whole value must match."""

    low: int
    high: int
    pattern: str | None = None

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str):
            return "serialization"
        if len(value) < self.low:
            return f"Member must have length greater than or equal to {self.low}"
        if len(value) > self.high:
            return f"Member must have length less than or equal to {self.high}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"Member must satisfy regular expression pattern: {self.pattern}"
        return None


@dataclass(frozen=True)
class Enum:
    values: frozenset[str]

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str):
            return "serialization"
        if value not in self.values:
            return f"Member must satisfy enum value set: [{', '.join(sorted(self.values))}]"
        return None


@dataclass(frozen=True)
class Integer:
    low: int
    high: int

    def problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "serialization"
        if value < self.low:
            return f"Member must have value greater than or equal to {self.low}"
        if value > self.high:
            return f"Member must have value less than or equal to {self.high}"
        return None


@dataclass(frozen=True)
class Boolean:
    def problem(self, value: object) -> str | None:
        return None if isinstance(value, bool) else "serialization"


@dataclass(frozen=True)
class Map:
    high: int
    key: Text | Enum
    value: Text

    def problem(self, value: object) -> str | None:
        if not isinstance(value, dict):
            return "serialization"
        if len(value) > self.high:
            return f"Member must have length less than or equal to {self.high}"
        for key, item in value.items():
            if (found := self.key.problem(key)) is not None:
                return found if found == "serialization" else f"Map keys must satisfy constraint: [{found}]"
            if (found := self.value.problem(item)) is not None:
                return found if found == "serialization" else f"Map value must satisfy constraint: [{found}]"
        return None


Constraint = Text | Enum | Integer | Boolean | Map


@dataclass(frozen=True)
class Operation:
    members: Mapping[str, Constraint]
    required: frozenset[str]


# From the botocore model pinpoint-sms-voice-v2/2022-03-31 (botocore validates only minimums client-side).
OPERATIONS: Mapping[str, Operation] = {
    SEND: Operation(
        members={
            "DestinationPhoneNumber": Text(1, 20, r"\+?[1-9][0-9]{1,18}"),
            "OriginationIdentity": Text(1, 256, r"[A-Za-z0-9_:/\+-]+"),
            "MessageBody": Text(1, 1600, r"(?!\s*$)[\s\S]+"),
            "MessageType": Enum(frozenset({"TRANSACTIONAL", "PROMOTIONAL"})),
            "Keyword": Text(1, 30, r"[ \S]+"),
            "ConfigurationSetName": Text(1, 256, r"[A-Za-z0-9_:/-]+"),
            "MaxPrice": Text(2, 8, r"[0-9]{0,2}\.[0-9]{1,5}"),
            "TimeToLive": Integer(5, 259_200),
            "Context": Map(5, Text(1, 100, r"\S+"), Text(1, 800, r"(?!\s)^[\s\S]+(?<!\s)")),
            "DestinationCountryParameters": Map(
                10, Enum(frozenset({"IN_TEMPLATE_ID", "IN_ENTITY_ID"})), Text(1, 64, r"\S+")
            ),
            "DryRun": Boolean(),
            "ProtectConfigurationId": Text(1, 256, r"[A-Za-z0-9_:/-]+"),
            "MessageFeedbackEnabled": Boolean(),
        },
        required=frozenset({"DestinationPhoneNumber"}),
    ),
    FEEDBACK: Operation(
        members={
            "MessageId": Text(1, 64, r"[A-Za-z0-9_:/-]+"),
            "MessageFeedbackStatus": Enum(frozenset({"RECEIVED", "FAILED"})),
        },
        required=frozenset({"MessageId", "MessageFeedbackStatus"}),
    ),
}


# -- replies ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A JSON 1.0 answer (``None`` body: an empty one)."""

    status: int
    body: Mapping[str, Any] | None
    content_type: str = CONTENT_TYPE

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode("utf-8")


def error(status: int, error_type: str, message: str, **members: Any) -> Reply:
    """A modeled error as the service writes it: ``__type`` (namespaced), ``Message`` and its members."""
    return Reply(status, {"__type": _NAMESPACE + error_type, "Message": message, **members})


def _conflict(reason: str, resource_type: str, message: str) -> Callable[[Mapping[str, Any]], Reply]:
    return lambda params: error(
        400,
        "ConflictException",
        message.format(**_echo(params)),
        Reason=reason,
        ResourceType=resource_type,
        ResourceId=_echo(params)["number"],
    )


def _validation(reason: str, message: str, *fields: str) -> Callable[[Mapping[str, Any]], Reply]:
    def reply(params: Mapping[str, Any]) -> Reply:
        text = message.format(**_echo(params))
        members: dict[str, Any] = {"Reason": reason}
        if fields:
            members["Fields"] = [{"Name": name, "Message": text} for name in fields]
        return error(400, "ValidationException", text, **members)

    return reply


def _fixed(reply: Reply) -> Callable[[Mapping[str, Any]], Reply]:
    return lambda params: reply


def _echo(params: Mapping[str, Any]) -> dict[str, str]:
    # The service's messages name the number (and its ResourceId is the number): adapters must not repeat them.
    return {
        "number": str(params.get("DestinationPhoneNumber", "")),
        "identity": str(params.get("OriginationIdentity", "")),
        "config_set": str(params.get("ConfigurationSetName", "default")),
        "body": str(params.get("MessageBody", "")),
    }


# The documented errors, by mode; each is built from the request, as the service echoes parts of it.
ERRORS: Mapping[str, Callable[[Mapping[str, Any]], Reply]] = {
    "throttled": _fixed(error(400, "ThrottlingException", "Rate exceeded")),
    "internal": lambda params: error(
        500, "InternalServerException", "An internal error occurred.", RequestId=str(uuid.uuid4())
    ),
    "unavailable": _fixed(Reply(503, None, "text/html")),
    "spend_limit": _fixed(
        error(
            400,
            "ServiceQuotaExceededException",
            "Monthly spend limit reached for text messages.",
            Reason="MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT",
        )
    ),
    # A quota other than the spend limit.
    "quota": _fixed(
        error(400, "ServiceQuotaExceededException", "Daily limit reached.", Reason="DAILY_DESTINATION_CALL_LIMIT")
    ),
    "opted_out": _conflict(
        "DESTINATION_PHONE_NUMBER_OPTED_OUT", "opted-out-number", "The destination phone number {number} is opted out."
    ),
    "protect_blocked": _conflict(
        "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
        "protect-configuration",
        "Messages to {number} are blocked by the protect configuration.",
    ),
    "number_override_blocked": _conflict(
        "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE",
        "protect-configuration",
        "{number} is blocked by a protect number override.",
    ),
    "not_verified": _conflict(
        "DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
        "verified-destination-number",
        "{number} is not a verified destination of this sandbox account.",
    ),
    "no_identity": _conflict(
        "NO_ORIGINATION_IDENTITIES_FOUND", "pool", "No origination identity can send to {number}."
    ),
    "conflict": _conflict("RESOURCE_NOT_ACTIVE", "configuration-set", "The resource for {number} is not active."),
    "country_blocked": _validation("DESTINATION_COUNTRY_BLOCKED", "Sending to the country of {number} is blocked."),
    "country_not_enabled": _validation("COUNTRY_NOT_ENABLED", "The country of {number} is not enabled."),
    "identity_country": _validation(
        "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY", "{identity} cannot send to the country of {number}."
    ),
    "international": _validation(
        "INTERNATIONAL_SENDING_NOT_SUPPORTED", "International sending to {number} is not supported."
    ),
    "bad_number": _validation(
        "INVALID_PARAMETER", "Invalid destination phone number {number}.", "DestinationPhoneNumber"
    ),
    "cannot_parse": _validation("CANNOT_PARSE", "Cannot parse {number}.", "DestinationPhoneNumber"),
    "price": _validation("PRICE_OVER_THRESHOLD", "The price to send to {number} is over the maximum price."),
    "sender_not_registered": _validation("SENDER_ID_NOT_REGISTERED", "Sender ID {identity} is not registered."),
    "sender_not_supported": _validation("SENDER_ID_NOT_SUPPORTED", "Sender IDs are not supported towards {number}."),
    "sender_requires_registration": _validation(
        "SENDER_ID_REQUIRES_REGISTRATION", "Sender ID {identity} must be registered to send to {number}."
    ),
    "bad_identity": _validation("INVALID_PARAMETER", "Invalid origination identity {identity}.", "OriginationIdentity"),
    "bad_body": _validation("MAXIMUM_SIZE_EXCEEDED", "The message body {body} is too long.", "MessageBody"),
    "validation": _validation("OTHER", "The request for {number} is invalid."),
    "access_denied": _fixed(
        error(400, "AccessDeniedException", "User is not authorized to perform: sms-voice:SendTextMessage")
    ),
    "account_disabled": _fixed(
        error(400, "AccessDeniedException", "The account is disabled.", Reason="ACCOUNT_DISABLED")
    ),
    "not_found": lambda params: error(
        400,
        "ResourceNotFoundException",
        "The configuration set {config_set} does not exist.".format(**_echo(params)),
        ResourceType="configuration-set",
        ResourceId=_echo(params)["config_set"],
    ),
}
MODES = frozenset({"ok", "slow", "drop", *ERRORS})


# -- requests ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EumRequest:
    """One request exactly as the fake received it (header names lower-cased)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    # The operation its X-Amz-Target names (None: no or another target), and its decoded JSON body.
    operation: str | None
    params: Any

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class FakeEum:
    """The fake service. Set ``mode`` / ``feedback_mode`` (and ``delay`` for ``slow``) before a request.

    Parameters
    ----------
    credentials:
        Access key ID to secret access key, for checking signatures.
    region:
        The region requests must be signed for (None: any).
    """

    credentials: Mapping[str, str] = field(default_factory=lambda: {"testing": "testing"})
    region: str | None = None
    mode: str = "ok"
    feedback_mode: str = "ok"
    delay: float = 1.0
    requests: list[EumRequest] = field(default_factory=list)
    # What was wrong with requests a real client would not send (empty for a well-formed client).
    problems: list[str] = field(default_factory=list)
    # Accepted messages (not dry runs), by message ID, and the feedback reported for each.
    messages: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    feedback: dict[str, str] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the eum fake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def last(self) -> EumRequest:
        return self.requests[-1]

    def calls(self, operation: str) -> list[EumRequest]:
        """The requests for ``operation``, oldest first."""
        with self._lock:
            return [request for request in self.requests if request.operation == operation]

    @property
    def sends(self) -> list[Mapping[str, Any]]:
        """The decoded bodies of every SendTextMessage request."""
        return [request.params for request in self.calls(SEND)]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.problems.clear()
            self.messages.clear()
            self.feedback.clear()
        self.mode, self.feedback_mode, self.delay = "ok", "ok", 1.0

    def start(self) -> FakeEum:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-eum", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- answering ------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        """Record one request and answer it (None: drop the connection)."""
        target = headers.get("x-amz-target", "")
        prefix, _, name = target.partition(".")
        operation = name if prefix == TARGET_PREFIX and name in OPERATIONS else None
        params: Any = None
        try:
            params = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            params = None
        with self._lock:
            self.requests.append(EumRequest(method, path, headers, body, operation, params))

        refusal = self._protocol(method, path, headers, body, operation)
        if refusal is not None or operation is None:
            return refusal
        if not isinstance(params, dict):
            return self._problem("body is not a JSON object", error(400, "SerializationException", "Malformed body"))
        invalid = validate(operation, params)
        if invalid is not None:
            return invalid
        mode = self.mode if operation == SEND else self.feedback_mode
        if mode == "drop":
            return None
        if mode not in ("ok", "slow"):
            return ERRORS[mode](params)
        # Taken now, answered late when slow: the message goes out though the client may have given up (and a
        # late answer cannot record into the next test's state).
        reply = self._send(params) if operation == SEND else self._feedback(params)
        if mode == "slow":
            time.sleep(self.delay)
        return reply

    def _send(self, params: Mapping[str, Any]) -> Reply:
        message_id = str(uuid.uuid4())
        if params.get("DryRun") is not True:
            with self._lock:
                self.messages[message_id] = params
        return Reply(200, {"MessageId": message_id})

    def _feedback(self, params: Mapping[str, Any]) -> Reply:
        message_id, status = params["MessageId"], params["MessageFeedbackStatus"]
        with self._lock:
            known = message_id in self.messages
            if known:
                self.feedback[message_id] = status
        if not known:
            return error(
                400,
                "ResourceNotFoundException",
                f"Message {message_id} does not exist.",
                ResourceType="message",
                ResourceId=message_id,
            )
        return Reply(200, {"MessageId": message_id, "MessageFeedbackStatus": status})

    def _problem(self, problem: str, reply: Reply) -> Reply:
        with self._lock:
            self.problems.append(problem)
        return reply

    def _protocol(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, operation: str | None
    ) -> Reply | None:
        """The service's answer to a request that breaks the protocol, or None for a well-formed one."""
        if method != "POST" or path != "/":
            return self._problem(f"{method} {path}", error(404, "UnknownOperationException", "Unknown operation"))
        if operation is None:
            return self._problem(
                "X-Amz-Target names no operation of this fake",
                error(400, "UnknownOperationException", "Unknown operation"),
            )
        if headers.get("content-type") != CONTENT_TYPE:
            return self._problem(
                f"Content-Type {headers.get('content-type')!r}",
                error(400, "SerializationException", "Unsupported content type"),
            )
        return self._authorization(headers, body)

    def _authorization(self, headers: Mapping[str, str], body: bytes) -> Reply | None:
        header = headers.get("authorization")
        amz_date = headers.get("x-amz-date", "")
        if not header:
            return self._problem(
                "no Authorization header",
                error(400, "MissingAuthenticationTokenException", "Missing Authentication Token"),
            )
        match = _AUTHORIZATION.fullmatch(header)
        if match is None or match["service"] != SIGNING_NAME or not _AMZ_DATE.fullmatch(amz_date):
            return self._problem(
                "malformed SigV4 Authorization or X-Amz-Date",
                error(400, "IncompleteSignatureException", "Authorization header requires a sms-voice scope"),
            )
        if self.region is not None and match["region"] != self.region:
            return self._problem(
                f"signed for region {match['region']}",
                error(403, "InvalidSignatureException", "Credential should be scoped to a valid region"),
            )
        secret = self.credentials.get(match["key"])
        if secret is None:
            return self._problem(
                "unknown access key",
                error(400, "UnrecognizedClientException", "The security token included in the request is invalid."),
            )
        signed = match["signed"].split(";")
        if not {"host", "x-amz-date", "x-amz-target", "content-type"} <= set(signed) or any(
            name not in headers for name in signed
        ):
            return self._problem(
                "signed headers incomplete",
                error(403, "InvalidSignatureException", "Signed headers are incomplete"),
            )
        expected = sigv4_signature(
            secret, amz_date, match["date"], match["region"], {name: headers[name] for name in signed}, body
        )
        if not hmac.compare_digest(expected, match["signature"]):
            return self._problem(
                "signature does not verify",
                error(403, "InvalidSignatureException", "The request signature we calculated does not match"),
            )
        return None


def validate(operation: str, params: Mapping[str, Any]) -> Reply | None:
    """The ValidationException (or SerializationException) the service answers ``params`` with, or None."""
    model = OPERATIONS[operation]
    unknown = sorted(set(params) - set(model.members))
    if unknown:
        message = f"Unsupported parameter: {unknown[0]}"
        return error(
            400,
            "ValidationException",
            message,
            Reason="UNSPECIFIED_PARAMETER_NOT_SUPPORTED",
            Fields=[{"Name": name, "Message": message} for name in unknown],
        )
    missing = sorted(model.required - set(params))
    if missing:
        message = f"1 validation error detected: Value null at '{missing[0]}' failed to satisfy constraint: "
        return error(
            400,
            "ValidationException",
            message + "Member must not be null",
            Reason="MISSING_PARAMETER",
            Fields=[{"Name": name, "Message": "Member must not be null"} for name in missing],
        )
    failures: list[dict[str, str]] = []
    for name, value in params.items():
        problem = model.members[name].problem(value)
        if problem == "serialization":
            return error(400, "SerializationException", f"Unexpected value type for {name}")
        if problem is not None:
            failures.append({"Name": name, "Message": problem})
    if failures:
        # Like the service, the message quotes the values (the number, the body): adapters must not repeat it.
        detail = "; ".join(
            f"Value '{params[entry['Name']]}' at '{entry['Name']}' failed to satisfy constraint: {entry['Message']}"
            for entry in failures
        )
        return error(
            400,
            "ValidationException",
            f"{len(failures)} validation error(s) detected: {detail}",
            Reason="FIELD_VALIDATION_FAILED",
            Fields=failures,
        )
    return None


def sigv4_signature(
    secret: str, amz_date: str, date: str, region: str, signed_headers: Mapping[str, str], body: bytes
) -> str:
    """The SigV4 signature of ``POST /`` (no query) with ``signed_headers`` and ``body``, for ``sms-voice``."""
    names = sorted(signed_headers)
    canonical_headers = "".join(f"{name}:{' '.join(signed_headers[name].split())}\n" for name in names)
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, ";".join(names), hashlib.sha256(body).hexdigest()]
    )
    scope = f"{date}/{region}/{SIGNING_NAME}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, SIGNING_NAME, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _handler_for(fake: FakeEum) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = fake.handle(self.command, self.path, headers, body)
            if reply is None:
                # drop: close the connection without answering.
                self.close_connection = True
                return
            payload = reply.encoded()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (its timeout): nothing to answer.
                pass

        def do_POST(self) -> None:
            self._handle()

        # Any other method is answered (and listed in ``problems``) rather than left to the base class.
        def do_GET(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:
            # Requests carry codes; the fake keeps them in memory for assertions, never in logs.
            return

    return Handler


@contextmanager
def running_eum(*, credentials: Mapping[str, str] | None = None, region: str | None = None) -> Iterator[FakeEum]:
    """Start a :class:`FakeEum` on a free port of 127.0.0.1 and stop it afterwards."""
    fake = FakeEum(region=region) if credentials is None else FakeEum(credentials=credentials, region=region)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
