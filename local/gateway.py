"""A small API Gateway (REST API, Lambda proxy) in front of the handlers, routed by template.yaml.

It does what API Gateway does for this stack and no more: match the route, run the TOKEN authorizer (with
its result cache), build the v1 proxy event, call the handler in-process and answer with its response, or
with the template's gateway responses for unknown routes and failed authorization.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import re
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from local.idp import JWKS_PATH, TOKEN_PATH, LocalIdp, token_mismatch, token_request_subject
from local.outbox import OUTBOX, Outbox
from local.template import LOCAL_ACCOUNT_ID, LOCAL_STACK_NAME, Authorizer, Function, Route, Template

MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_DISCARD_BYTES: Final = 64 * 1024 * 1024
API_ID: Final = "local"
PROBLEM_JSON: Final = "application/problem+json"
OUTBOX_PATH: Final = "/_local/outbox"
COUNTERS_PATH: Final = "/_local/counters"
HINT_HEADER: Final = "X-Local-Hint"
"""Set on an answer the local stack can explain (a user token of another IdP); deployed stacks never send it."""

Handler = Callable[[dict[str, Any], Any], Any]


# ---------------------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class RouteMatch:
    """A route and the path parameters taken from the request path."""

    route: Route
    path_parameters: dict[str, str]


class Router:
    """Matches a method and path against the template's routes, literal segments before parameters."""

    def __init__(self, routes: Iterable[Route]) -> None:
        compiled = [(route, *_compile(route.path)) for route in routes]
        # API Gateway walks the path a segment at a time, preferring a literal segment to {x} and {x} to {x+}:
        # /a/client/{proxy+} before /a/{proxy+}, /a/b before /a/{x}.
        self._routes = sorted(compiled, key=lambda item: _specificity(item[2]))

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route for ``method`` and ``path`` (raw, without query string), or None."""
        path = path.rstrip("/") or "/"
        for route, pattern, _, _greedy in self._routes:
            found = pattern.fullmatch(path)
            if found and route.method in (method.upper(), "ANY"):
                params = {name: unquote(value) for name, value in found.groupdict().items()}
                return RouteMatch(route, _original_names(route.path, params))
        return None


def _specificity(path: str) -> list[int]:
    """Sorts the routes a path could match most specific first: per segment, literal 0, {x} 1, {x+} 2."""
    ranks = []
    for segment in path.strip("/").split("/"):
        name = re.fullmatch(r"\{([^}]+?)(\+?)\}", segment)
        ranks.append(0 if name is None else 2 if name.group(2) else 1)
    return ranks


def _compile(path: str) -> tuple[re.Pattern[str], str, bool]:
    parts: list[str] = []
    greedy = False
    for index, segment in enumerate(path.strip("/").split("/")):
        name = re.fullmatch(r"\{([^}]+?)(\+?)\}", segment)
        if name is None:
            parts.append(re.escape(segment))
        else:
            greedy = greedy or bool(name.group(2))
            parts.append(f"(?P<p{index}>.+)" if name.group(2) else f"(?P<p{index}>[^/]+)")
    return re.compile("/" + "/".join(parts) if parts != [""] else "/"), path, greedy


def _original_names(path: str, params: Mapping[str, str]) -> dict[str, str]:
    # Group names are positional (p2) because template names need not be Python identifiers.
    names = {
        f"p{index}": segment.strip("{}+")
        for index, segment in enumerate(path.strip("/").split("/"))
        if segment.startswith("{")
    }
    return {names[group]: value for group, value in params.items()}


# ------------------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the gateway sees it; ``target`` is the raw path with its query string."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    @property
    def path(self) -> str:
        """The raw path, without the query string."""
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        """The raw query string."""
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        """The last value of a header, matched case-insensitively."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class HttpResponse:
    """What the gateway writes back."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The last value of a header, matched case-insensitively."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def build_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    stage: str,
    request_id: str,
    authorizer: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway REST API (v1) Lambda proxy event for ``request``."""
    now = now or datetime.now(UTC)
    headers = _forwarded_headers(request)
    multi_headers: dict[str, list[str]] = {}
    for key, value in headers:
        multi_headers.setdefault(key, []).append(value)
    query = parse_qsl(request.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    route = match.route
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method.upper(),
        "headers": {key: values[-1] for key, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": _request_context(request, route, stage, request_id, authorizer, now),
        "body": request.body.decode("utf-8", errors="replace") if request.body else None,
        "isBase64Encoded": False,
    }


def _forwarded_headers(request: HttpRequest) -> list[tuple[str, str]]:
    headers = list(request.headers)
    present = {key.lower() for key, _ in headers}
    # API Gateway adds these; handlers may read the client address from them.
    for key, value in (
        ("X-Forwarded-For", request.source_ip),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "443"),
    ):
        if key.lower() not in present:
            headers.append((key, value))
    return headers


def _request_context(
    request: HttpRequest,
    route: Route,
    stage: str,
    request_id: str,
    authorizer: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": request.header("Host") or "127.0.0.1",
        "domainPrefix": "127",
        "extendedRequestId": request_id,
        "httpMethod": request.method.upper(),
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "sourceIp": request.source_ip,
            "user": None,
            "userAgent": request.header("User-Agent"),
            "userArn": None,
        },
        "path": f"/{stage}{request.path}",
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "resourceId": "local",
        "resourcePath": route.path,
        "stage": stage,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return context


def method_arn(request: HttpRequest, *, stage: str, region: str) -> str:
    """The ``methodArn`` API Gateway passes to an authorizer for this request."""
    return f"arn:aws:execute-api:{region}:{LOCAL_ACCOUNT_ID}:{API_ID}/{stage}/{request.method.upper()}{request.path}"


# --------------------------------------------------------------------------------------- lambdas


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: int = 3
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout (not enforced locally)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    @classmethod
    def for_function(cls, function: Function, region: str = "us-east-1") -> LambdaContext:
        """A fresh context for one invocation of ``function``."""
        name = f"{LOCAL_STACK_NAME}-{function.logical_id}"
        return cls(
            function_name=name,
            memory_limit_in_mb=function.memory_size,
            invoked_function_arn=f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}",
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=function.timeout,
        )


EMPTY_METRICS_WARNING: Final = "No application metrics to publish"


@contextlib.contextmanager
def quiet_empty_metrics() -> Iterator[None]:
    """Hide Powertools' "No application metrics to publish" warning while handlers run in this process.

    Every handler flushes its metrics (``@metrics.log_metrics``), so a request that adds none (a health
    check, the JWKS) makes Powertools warn once per process. Such a request is expected to have no metric;
    Powertools documents this filter for functions that may publish none.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=EMPTY_METRICS_WARNING, category=UserWarning)
        yield


def import_handler(function: Function) -> Handler:
    """Import the function's module (``functions.<folder>.app``) and return its handler."""
    module = importlib.import_module(function.module)
    handler: Handler = getattr(module, function.attribute)
    return handler


class FunctionRunner:
    """Runs handlers in-process, importing each on first use.

    One invocation per function at a time, like one warm Lambda container: handler modules keep per-request
    state on module-level objects (a Powertools resolver's ``current_event``), which concurrent threads
    would trample.
    """

    def __init__(self, loader: Callable[[Function], Handler] = import_handler, region: str = "us-east-1") -> None:
        self._loader = loader
        self._region = region
        self._handlers: dict[str, Handler] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def invoke(self, function: Function, event: Mapping[str, Any]) -> Any:
        """Call the function's handler with ``event`` and a fresh context; exceptions propagate."""
        with self._guard:
            lock = self._locks.setdefault(function.logical_id, threading.Lock())
        with lock:
            handler = self._handlers.get(function.logical_id)
            if handler is None:
                handler = self._handlers[function.logical_id] = self._loader(function)
            return handler(dict(event), LambdaContext.for_function(function, self._region))


# ------------------------------------------------------------------------------------ authorizers


class AuthorizationError(Exception):
    """The request does not get through the authorizer; ``response_type`` is the gateway response to send."""

    def __init__(self, response_type: str, message: str) -> None:
        super().__init__(message)
        self.response_type = response_type
        self.message = message


def policy_allows(policy: Mapping[str, Any], arn: str) -> bool:
    """Evaluate an authorizer's IAM policy for ``execute-api:Invoke`` on ``arn``: an explicit Deny wins."""
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not (
            _any_matches(statement.get("Action"), "execute-api:Invoke") and _any_matches(statement.get("Resource"), arn)
        ):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        allowed = allowed or effect == "allow"
    return allowed


def _any_matches(patterns: Any, value: str) -> bool:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_wildcard(str(pattern)).fullmatch(value) for pattern in patterns)


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(".".join(map(re.escape, part.split("?"))) for part in pattern.split("*")))


@dataclass(frozen=True)
class _AuthorizerResult:
    policy: Mapping[str, Any]
    principal_id: str
    context: dict[str, Any]
    expires: float


class AuthorizerRunner:
    """Runs the Api's Lambda authorizers the way API Gateway does, with its per-token result cache."""

    def __init__(self, template: Template, runner: FunctionRunner, *, stage: str, region: str) -> None:
        self._template = template
        self._runner = runner
        self._stage = stage
        self._region = region
        self._cache: dict[tuple[str, str], _AuthorizerResult] = {}
        self._lock = threading.Lock()

    def authorize(self, name: str, request: HttpRequest) -> dict[str, Any]:
        """The ``requestContext.authorizer`` for an allowed request; raises AuthorizationError otherwise."""
        authorizer = self._template.authorizers[name]
        token = request.header(authorizer.header)
        if not token:
            raise AuthorizationError("UNAUTHORIZED", "Unauthorized")
        if authorizer.validation_expression and not re.fullmatch(authorizer.validation_expression, token):
            raise AuthorizationError("UNAUTHORIZED", "Unauthorized")
        arn = method_arn(request, stage=self._stage, region=self._region)
        started = time.perf_counter()
        result = self._cached(authorizer, token) or self._call(authorizer, token, arn, request)
        if not policy_allows(result.policy, arn):
            raise AuthorizationError("ACCESS_DENIED", "User is not authorized to access this resource")
        latency = int((time.perf_counter() - started) * 1000)
        return {**result.context, "principalId": result.principal_id, "integrationLatency": latency}

    def _cached(self, authorizer: Authorizer, token: str) -> _AuthorizerResult | None:
        with self._lock:
            result = self._cache.get((authorizer.name, token))
        return result if result is not None and result.expires > time.monotonic() else None

    def _call(self, authorizer: Authorizer, token: str, arn: str, request: HttpRequest) -> _AuthorizerResult:
        if authorizer.payload_type == "TOKEN":
            event: dict[str, Any] = {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
        else:
            event = {
                **build_event(
                    request,
                    RouteMatch(Route("", "", "", None), {}),
                    stage=self._stage,
                    request_id=str(uuid.uuid4()),
                ),
                "type": "REQUEST",
                "methodArn": arn,
            }
        function = self._template.functions[authorizer.function_id]
        try:
            response = self._runner.invoke(function, event)
        except Exception as exc:
            if str(exc) == "Unauthorized":  # the documented way for an authorizer to answer 401
                raise AuthorizationError("UNAUTHORIZED", "Unauthorized") from exc
            traceback.print_exc()
            raise AuthorizationError("AUTHORIZER_FAILURE", "Authorizer failure") from exc
        result = _authorizer_result(response, authorizer.ttl_seconds)
        if authorizer.ttl_seconds > 0 and authorizer.payload_type == "TOKEN":
            with self._lock:
                self._cache[(authorizer.name, token)] = result
        return result


def _authorizer_result(response: Any, ttl_seconds: int) -> _AuthorizerResult:
    if not isinstance(response, Mapping) or not isinstance(response.get("policyDocument"), Mapping):
        print("local gateway: the authorizer returned no policyDocument", file=sys.stderr)
        raise AuthorizationError("AUTHORIZER_CONFIGURATION_ERROR", "Authorizer configuration error")
    if not response.get("principalId"):
        print("local gateway: the authorizer returned no principalId", file=sys.stderr)
        raise AuthorizationError("AUTHORIZER_CONFIGURATION_ERROR", "Authorizer configuration error")
    # REST APIs hand the context to the function with every value as a string.
    context = {key: _context_value(value) for key, value in (response.get("context") or {}).items()}
    return _AuthorizerResult(
        policy=response["policyDocument"],
        principal_id=str(response["principalId"]),
        context=context,
        expires=time.monotonic() + ttl_seconds,
    )


def _context_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------- gateway responses

_RESPONSE_DEFAULTS: Final = {
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "BAD_REQUEST_BODY": 400,
    "AUTHORIZER_FAILURE": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
}


def gateway_response(responses: Mapping[str, Any], response_type: str, message: str, request_id: str) -> HttpResponse:
    """Render one of API Gateway's own responses as the template's GatewayResponses configure it.

    As in API Gateway, a type the template does not configure takes DEFAULT_4XX or DEFAULT_5XX, including
    that fallback's status code.
    """
    default_status = _RESPONSE_DEFAULTS.get(response_type, 500)
    fallback = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
    spec = responses.get(response_type) or responses.get(fallback) or {}
    status = int(spec.get("StatusCode", default_status))
    headers = [
        (name, str(value).strip("'"))
        for name, value in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items()
        if str(value).startswith("'")  # only static values; mappings from the request are not used here
    ]
    template = (spec.get("ResponseTemplates") or {}).get("application/json")
    if template is None:
        body = json.dumps({"message": message})
    else:
        body = (
            str(template)
            .replace("$context.error.messageString", json.dumps(message))
            .replace("$context.error.message", message)
            .replace("$context.requestId", request_id)
        )
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, [*headers, ("x-amzn-ErrorType", response_type)], body.encode())


def problem(status: int, title: str, detail: str, code: str) -> HttpResponse:
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code}
    return HttpResponse(status, [("Content-Type", PROBLEM_JSON)], json.dumps(body).encode())


def function_error() -> HttpResponse:
    """What API Gateway answers when the Lambda function fails or returns a malformed proxy response."""
    return problem(502, "Bad Gateway", "The function failed; the local stack's console has the details.", "BAD_GATEWAY")


def proxy_response(result: Any) -> HttpResponse:
    """Turn a Lambda proxy result into an HTTP response; raises TypeError when it is malformed."""
    if not isinstance(result, Mapping) or not isinstance(result.get("statusCode"), int):
        raise TypeError("Malformed Lambda proxy response: statusCode must be an integer")
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values)
    for name, value in (result.get("headers") or {}).items():
        if not any(name.lower() == key.lower() for key in multi):
            headers.append((name, str(value)))
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise TypeError("Malformed Lambda proxy response: body must be a string")
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    if payload and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default
    return HttpResponse(result["statusCode"], headers, payload)


# ---------------------------------------------------------------------------------------- gateway


class Gateway:
    """Answers HTTP requests with the template's functions; no sockets here, see ``serve``.

    Parameters
    ----------
    template:
        The template that defines routes, authorizers and gateway responses.
    stage:
        The stage name in events and method ARNs (the template's resolved StageName).
    runner:
        Runs handlers; pass one with a custom loader to use fake handlers.
    outbox:
        What ``/_local/outbox`` shows.
    idp:
        The local identity provider behind ``/_local/idp/jwks.json`` and ``/_local/idp/token``; None leaves
        those routes out.
    reset_counters:
        Deletes the table's counters and returns how many, behind ``DELETE /_local/counters``; None leaves
        that route out.
    """

    def __init__(
        self,
        template: Template,
        *,
        stage: str = "api",
        region: str = "us-east-1",
        runner: FunctionRunner | None = None,
        outbox: Outbox = OUTBOX,
        active: Callable[[str], bool] = lambda _logical_id: True,
        idp: LocalIdp | None = None,
        reset_counters: Callable[[], int] | None = None,
    ) -> None:
        self.template = template
        self.stage = stage
        self.outbox = outbox
        self.idp = idp
        self.reset_counters = reset_counters
        self.runner = runner or FunctionRunner(region=region)
        self.routes = [route for route in template.routes if active(route.function_id)]
        """The template's routes whose functions exist here (their Condition holds)."""
        self.router = Router(self.routes)
        self.authorizers = AuthorizerRunner(template, self.runner, stage=stage, region=region)
        self._responses = template.gateway_responses

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        path = request.path.rstrip("/")
        if path == OUTBOX_PATH:
            response = self._outbox(request, request_id)
        elif path == COUNTERS_PATH and self.reset_counters is not None:
            response = self._counters(self.reset_counters, request, request_id)
        elif self.idp is not None and path in (JWKS_PATH, TOKEN_PATH):
            response = self._idp(self.idp, request, request_id)
        else:
            response = self._api(request, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def too_large(self) -> HttpResponse:
        """The answer to a body over API Gateway's 10 MB limit."""
        return gateway_response(self._responses, "REQUEST_TOO_LARGE", "Request Too Long", str(uuid.uuid4()))

    def _api(self, request: HttpRequest, request_id: str) -> HttpResponse:
        match = self.router.match(request.method, request.path)
        if match is None:
            return gateway_response(
                self._responses, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id
            )
        authorizer_context = None
        if match.route.authorizer is not None:
            try:
                authorizer_context = self.authorizers.authorize(match.route.authorizer, request)
            except AuthorizationError as denied:
                return gateway_response(self._responses, denied.response_type, denied.message, request_id)
        event = build_event(request, match, stage=self.stage, request_id=request_id, authorizer=authorizer_context)
        function = self.template.functions[match.route.function_id]
        try:
            response = proxy_response(self.runner.invoke(function, event))
        except Exception:
            # The traceback is for the developer's console; the client sees what API Gateway would send.
            print(f"local gateway: {function.logical_id} failed", file=sys.stderr)
            traceback.print_exc()
            return function_error()
        if response.status == 401 and self.idp is not None and request.path.startswith("/v1/verification/"):
            self._explain_user_token(self.idp, request, response)
        return response

    def _explain_user_token(self, idp: LocalIdp, request: HttpRequest, response: HttpResponse) -> None:
        # A token minted for a stack on another port (or audience) is refused like any foreign token; say so,
        # since nothing in the 401 can tell the developer which claim is wrong.
        mismatch = token_mismatch(idp, request.header("Authorization"))
        if mismatch is None:
            return
        print(
            f"local IdP: {request.path} refused a user token whose {mismatch}; `make -s token SUB=<user>` mints one "
            "for the running `make run` (PORT=... picks a stack)",
            file=sys.stderr,
            flush=True,
        )
        response.headers.append(
            (HINT_HEADER, f"the token is not from this stack's IdP ({idp.issuer}, aud {idp.audience})")
        )

    def _outbox(self, request: HttpRequest, request_id: str) -> HttpResponse:
        method = request.method.upper()
        if method == "GET":
            body = json.dumps({"messages": self.outbox.messages()}).encode()
            return HttpResponse(200, [("Content-Type", "application/json")], body)
        if method == "DELETE":
            self.outbox.clear()
            return HttpResponse(204)
        return gateway_response(
            self._responses, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id
        )

    def _counters(self, reset: Callable[[], int], request: HttpRequest, request_id: str) -> HttpResponse:
        if request.method.upper() != "DELETE":
            return gateway_response(
                self._responses, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id
            )
        deleted = reset()
        print(f"local stack: {deleted} counters deleted (send caps, failure counts, locks)", file=sys.stderr)
        return HttpResponse(200, [("Content-Type", "application/json")], json.dumps({"deleted": deleted}).encode())

    def _idp(self, idp: LocalIdp, request: HttpRequest, request_id: str) -> HttpResponse:
        # Public, like an identity provider's own endpoints: the JWKS for the functions, tokens for curl.
        method, path = request.method.upper(), request.path.rstrip("/")
        if method == "GET" and path == JWKS_PATH:
            headers = [("Content-Type", "application/json"), ("Cache-Control", "max-age=300")]
            return HttpResponse(200, headers, json.dumps(idp.jwks()).encode())
        if method == "POST" and path == TOKEN_PATH:
            try:
                subject, ttl = token_request_subject(request.body)
            except ValueError as invalid:
                return problem(400, "Bad Request", str(invalid), "INVALID_REQUEST")
            body = json.dumps({"accessToken": idp.mint(subject, ttl)}).encode()
            return HttpResponse(200, [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body)
        return gateway_response(
            self._responses, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id
        )


# ------------------------------------------------------------------------------------------- HTTP


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server: GatewayServer

    def _serve(self) -> None:
        started = time.perf_counter()
        gateway = self.server.gateway
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if gateway is None:  # bound, not started: ``start`` refuses that, so this is only a safety net
            response = problem(503, "Service Unavailable", "The local stack is starting.", "SERVICE_UNAVAILABLE")
            self.close_connection = True
        elif length < 0:
            response = problem(400, "Bad Request", "Invalid Content-Length.", "INVALID_REQUEST")
            self.close_connection = True
        elif length > MAX_BODY_BYTES:
            response = gateway.too_large()
            self._discard(length)
        else:
            request = HttpRequest(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=self.rfile.read(length) if length else b"",
                source_ip=self.client_address[0],
            )
            response = gateway.handle(request)
        self._write(response)
        elapsed = (time.perf_counter() - started) * 1000
        # The path without its query string: queries may carry values that do not belong in a log.
        path = urlsplit(self.path).path
        print(f"{self.command} {path} {response.status} {elapsed:.0f}ms", file=sys.stderr, flush=True)

    def _discard(self, length: int) -> None:
        # A client still sending its body would see a broken pipe instead of the 413; read it (within reason).
        if length > MAX_DISCARD_BYTES:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _write(self, response: HttpResponse) -> None:
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log; ``_serve`` logs one line per request."""


class GatewayServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one Gateway."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, gateway: Gateway | None, host: str = "127.0.0.1", port: int = 3000) -> None:
        # None binds the socket first, so the URL is known (port 0) before the gateway that needs it is built;
        # set ``gateway`` before ``serve_forever``.
        self.gateway: Gateway | None = gateway
        super().__init__((host, port), _RequestHandler)

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket (the real port when started on port 0)."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve(gateway: Gateway, host: str = "127.0.0.1", port: int = 3000) -> tuple[GatewayServer, threading.Thread]:
    """Start ``gateway`` on ``host:port`` (0 for any free port) in a daemon thread."""
    return start(GatewayServer(gateway, host, port))


def start(server: GatewayServer) -> tuple[GatewayServer, threading.Thread]:
    """Serve a bound server (its ``gateway`` set) in a daemon thread."""
    if server.gateway is None:
        raise RuntimeError("set the server's gateway before starting it")
    thread = threading.Thread(target=server.serve_forever, name="local-gateway", daemon=True)
    thread.start()
    return server, thread
