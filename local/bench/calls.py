"""AWS API calls per request: the handlers in this process against DynamoDB Local and moto."""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib
import io
import json
import os
import re
import sys
import threading
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

import boto3
import phonenumbers

from local import REPO_ROOT
from local.bench.analysis import ApiCall, Limit, Target, code_from_sms, wrong_code
from local.gateway import LambdaContext
from local.services import (
    java_missing_warning,
    patched_environ,
    provision,
    start_dynamodb_local,
    start_moto_server,
)
from local.template import Template
from otp_core import runtime

EVENTS: Final = REPO_ROOT / "events"
API_KEY: Final = "bench-api-key"
CLAIM_USER: Final = "user-123"  # the userId of events/claim_challenge.json
# Policy changes for the whole run: resend without waiting, and every request comes from the event's IP.
POLICY_OVERRIDES: Final = {"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_IP_PER_HOUR": "100000"}
_DEFAULT: Final = object()


# ------------------------------------------------------------------------------------------ events


def load_event(function: str) -> dict[str, Any]:
    """``events/<function>.json``."""
    event: dict[str, Any] = json.loads((EVENTS / f"{function}.json").read_text(encoding="utf-8"))
    return event


@dataclass(frozen=True)
class Request:
    """How one request differs from its function's events/ file.

    ``body`` replaces the JSON body (None: no body), ``form`` replaces it with a form-encoded one; ``token`` is the
    authorizer's ``authorizationToken``; ``event`` names the events/ file when it is not the function's;
    ``resource`` and ``path_parameters`` move the request to another route of the function.
    """

    body: Any = _DEFAULT
    challenge_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    event: str | None = None
    form: dict[str, str] | None = None
    resource: str | None = None
    path_parameters: dict[str, str] | None = None


def build_event(template_event: dict[str, Any], request: Request) -> dict[str, Any]:
    """An API Gateway (or TOKEN authorizer) event: the events/ file with the request's changes and a new id."""
    event = copy.deepcopy(template_event)
    if request.token is not None:
        event["authorizationToken"] = request.token
    if "requestContext" not in event:
        return event
    if request.body is not _DEFAULT:
        event["body"] = None if request.body is None else json.dumps(request.body)
    if request.form is not None:
        event["body"] = urllib.parse.urlencode(request.form)
    if request.challenge_id is not None:
        event["pathParameters"] = {"challengeId": request.challenge_id}
        event["path"] = event["resource"].replace("{challengeId}", request.challenge_id)
    if request.resource is not None or request.path_parameters is not None:
        event["resource"] = request.resource or event["resource"]
        parameters = request.path_parameters if request.path_parameters is not None else event["pathParameters"]
        event["pathParameters"] = parameters or None
        event["path"] = re.sub(r"\{([^}]+)\}", lambda match: (parameters or {})[match.group(1)], event["resource"])
        event["requestContext"].update(resourcePath=event["resource"], path=f"/api{event['path']}")
    if request.headers:
        event["headers"] = {**(event.get("headers") or {}), **request.headers}
        event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


# ---------------------------------------------------------------------------------------- recorder


class CallRecorder:
    """botocore ``before-call`` hook: records the calls made while ``recording`` is on (main thread only)."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.recording = False

    def __call__(self, model: Any, params: Any, **_: Any) -> None:
        # Returning anything but None would answer the call in botocore's place.
        if self.recording and threading.current_thread() is threading.main_thread():
            body = _json_body(params)
            self.calls.append(
                ApiCall(model.service_model.service_name, model.name, _items(model.name, body), _item_kind(body))
            )

    @contextlib.contextmanager
    def record(self) -> Iterator[list[ApiCall]]:
        calls: list[ApiCall] = []
        self.calls, self.recording = calls, True
        try:
            yield calls
        finally:
            self.recording = False


def _json_body(params: Any) -> dict[str, Any]:
    """The JSON request body botocore built (DynamoDB, KMS, Secrets Manager); empty for other protocols."""
    try:
        body = json.loads(params["body"])
    except (KeyError, TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _items(operation: str, body: dict[str, Any]) -> int:
    if operation not in ("TransactWriteItems", "TransactGetItems", "BatchWriteItem", "BatchGetItem"):
        return 1
    if "TransactItems" in body:
        return len(body["TransactItems"])
    requests = body.get("RequestItems") or {}
    return sum(len(value.get("Keys", value) if isinstance(value, dict) else value) for value in requests.values())


def _item_kind(body: dict[str, Any]) -> str:
    """``CHL`` for a single-item call on ``pk = "CHL#..."``: only the prefix, never an identifier."""
    item = body.get("Key") or body.get("Item") or {}
    value = (item.get("pk") or {}).get("S") if isinstance(item, dict) else None
    return value.split("#", 1)[0] if isinstance(value, str) else ""


# --------------------------------------------------------------------------------------------- lab


@dataclass(frozen=True)
class Reply:
    """A handler's answer: the HTTP status (or the authorizer's Allow/Deny, or ``raised ...``) and body."""

    status: str
    body: Any


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    phone: str
    code: str


class Lab:
    """The provisioned local services and the handlers, run in this process with a call recorder attached."""

    def __init__(self, template: Template, environment: dict[str, str], uses_dynamodb_local: bool) -> None:
        self.template = template
        self.environment = environment
        self.uses_dynamodb_local = uses_dynamodb_local
        self.recorder = CallRecorder()
        self._phones = iter(range(2000, 10_000))
        self._modules: dict[str, ModuleType] = {}

    # -- handlers

    def module(self, function: str, *, fresh: bool = False) -> ModuleType:
        """``functions.<function>.app``; ``fresh`` imports it again, as a new Lambda instance would."""
        name = f"functions.{function}.app"
        if fresh or function not in self._modules:
            sys.modules.pop(name, None)
            self._modules[function] = importlib.import_module(name)
        return self._modules[function]

    def invoke(self, function: str, request: Request | None = None, *, fresh: bool = False) -> Reply:
        """Run a handler with its events/ file changed as ``request`` says."""
        module = self.module(function, fresh=fresh)
        request = request or Request()
        event = build_event(load_event(request.event or function), request)
        spec = self.template.find_function(function)
        context = LambdaContext(
            function_name=f"bench-{spec.logical_id}",
            memory_limit_in_mb=spec.memory_size,
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:bench-{spec.logical_id}",
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=spec.timeout,
        )
        # Metrics print their EMF document; the report owns stdout.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = module.lambda_handler(event, context)
            except Exception as exc:
                return Reply(f"raised {type(exc).__name__}", None)
        if "statusCode" in result:
            text = result.get("body")
            return Reply(str(result["statusCode"]), json.loads(text) if text else None)
        return Reply(str(result["policyDocument"]["Statement"][0]["Effect"]), result)

    # -- test data

    def new_phone(self) -> str:
        """A valid US number no earlier request used, each in its own thousand-number block, so neither the
        per-number limits nor the fraud guard's block velocity ever interfere."""
        for index in self._phones:
            number = f"+1650{index // 10:03d}{index % 10}253"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                return number
        raise RuntimeError("ran out of phone numbers")

    def create_request(self, phone: str | None = None) -> Request:
        body = json.loads(load_event("create_challenge")["body"])
        return Request(body={**body, "phoneNumber": phone or self.new_phone()})

    def create(self) -> Challenge:
        """A pending challenge and its code (read from moto's SNS)."""
        request = self.create_request()
        reply = self.invoke("create_challenge", request)
        if reply.status != "201":
            raise RuntimeError(f"creating a challenge answered {reply.status}: {reply.body}")
        phone = request.body["phoneNumber"]
        return Challenge(reply.body["challengeId"], phone, self.sms_code(phone))

    def verified(self) -> Challenge:
        """A challenge verified with its right code (claimable)."""
        challenge = self.create()
        reply = self.invoke(
            "verify_challenge", Request(body={"code": challenge.code}, challenge_id=challenge.challenge_id)
        )
        if reply.status != "200" or not reply.body.get("isVerified"):
            raise RuntimeError(f"verifying a challenge answered {reply.status}: {reply.body}")
        return challenge

    @staticmethod
    def sms_code(phone: str) -> str:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.sns.models import sns_backends

        messages = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values()
        bodies = [message for to, message, *_ in messages if to == phone]
        if not bodies:
            raise RuntimeError("no SMS reached moto for a new challenge")
        return code_from_sms(bodies[-1])


@contextlib.contextmanager
def start_lab(template: Template) -> Iterator[Lab]:
    """Start DynamoDB Local (moto when Java is missing) and moto, provision, attach the recorder; stop after."""
    dynamodb = start_dynamodb_local()
    moto = start_moto_server()
    try:
        if dynamodb is None:
            print(java_missing_warning(), file=sys.stderr)
        environment = provision(
            template,
            dynamodb_endpoint=dynamodb.endpoint if dynamodb else moto.endpoint,
            aws_endpoint=moto.endpoint,
            api_key=API_KEY,
            environ=POLICY_OVERRIDES,
        )
        with patched_environ(environment):
            # Only warnings and errors of the handlers reach the console; INFO lines would bury the report.
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            lab = Lab(template, environment, uses_dynamodb_local=dynamodb is not None)
            boto3.setup_default_session()
            session = boto3.DEFAULT_SESSION
            if session is None:
                raise RuntimeError("boto3 did not create its default session")
            # Clients copy the session's hooks when they are created: register first, then rebuild them.
            session.events.register("before-call.*.*", lab.recorder, unique_id="bench-call-recorder")
            runtime.reset()
            try:
                yield lab
            finally:
                runtime.reset()
    finally:
        moto.stop()
        if dynamodb is not None:
            dynamodb.stop()


# ---------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """A request kind: its function, the target of its warm request, and how to make a cold and a warm one."""

    name: str
    function: str
    target: Target
    requests: Callable[[Lab], tuple[Request, Request]]


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    cold: list[ApiCall]
    warm: list[ApiCall]
    cold_status: str
    warm_status: str


def _pair(make: Callable[[], Request]) -> tuple[Request, Request]:
    return make(), make()


def _idempotent(lab: Lab) -> Request:
    request = lab.create_request()
    return Request(body=request.body, headers={"Idempotency-Key": str(uuid.uuid4())})


def _replay(lab: Lab) -> tuple[Request, Request]:
    request = _idempotent(lab)
    first = lab.invoke("create_challenge", request)
    if first.status != "201":
        raise RuntimeError(f"the first idempotent create answered {first.status}: {first.body}")
    return request, request


def _verify(lab: Lab, *, right: bool) -> Request:
    challenge = lab.create()
    code = challenge.code if right else wrong_code(challenge.code)
    return Request(body={"code": code}, challenge_id=challenge.challenge_id)


def _same_challenge(lab: Lab) -> tuple[Request, Request]:
    request = Request(challenge_id=lab.create().challenge_id)
    return request, request


def _claim(lab: Lab) -> Request:
    return Request(body={"userId": CLAIM_USER}, challenge_id=lab.verified().challenge_id)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _twilio(lab: Lab, resource: str, form: dict[str, str]) -> Request:
    """A twilio-python request to the bench app's Verify Service (its SIDs from the app record, its key)."""
    from otp_core.records import DEFAULT_APP

    sid = runtime.app_admin().get(DEFAULT_APP).sid
    return Request(
        event="twilio_verify_create",
        form=form,
        resource=f"/twilio/v2/Services/{{ServiceSid}}/{resource}",
        path_parameters={"ServiceSid": f"VA{sid}"},
        headers=_basic(f"AC{sid}", API_KEY),
    )


def _twilio_create(lab: Lab) -> Request:
    return _twilio(lab, "Verifications", {"To": lab.new_phone(), "Channel": "sms"})


def _twilio_check(lab: Lab) -> Request:
    """A VerificationCheck with the right code of a verification the facade just started."""
    phone = lab.new_phone()
    started = lab.invoke("twilio_verify", _twilio(lab, "Verifications", {"To": phone, "Channel": "sms"}))
    if started.status != "201":
        raise RuntimeError(f"starting a Twilio verification answered {started.status}: {started.body}")
    return _twilio(lab, "VerificationCheck", {"To": phone, "Code": lab.sms_code(phone)})


def _authsignal_claim(lab: Lab) -> Request:
    return Request(
        body={"challengeId": lab.verified().challenge_id, "userId": CLAIM_USER},
        resource="/authsignal/v1/claim",
        path_parameters={},
        headers=_basic(API_KEY, ""),
    )


def scenarios() -> list[Scenario]:
    """The requests measured, with the targets their warm requests must meet."""
    one_write = Limit("writes", 1, exactly=True)
    # A send is one table write and one SMS: the challenge ID and send number travel with the message, so no
    # record of the provider's message ID follows it (otp_core.sms.delivery).
    return [
        Scenario(
            "create",
            "create_challenge",
            Target((one_write, Limit("sns_publishes", 1, exactly=True))),
            lambda lab: _pair(lab.create_request),
        ),
        Scenario(
            "create with Idempotency-Key",
            "create_challenge",
            Target(),
            lambda lab: _pair(lambda: _idempotent(lab)),
        ),
        Scenario("create, replayed Idempotency-Key", "create_challenge", Target(), _replay),
        Scenario(
            "verify, wrong code",
            "verify_challenge",
            Target((one_write,)),
            lambda lab: _pair(lambda: _verify(lab, right=False)),
        ),
        Scenario(
            "verify, right code",
            "verify_challenge",
            Target((Limit("writes", 2), Limit("kms", 1, exactly=True))),
            lambda lab: _pair(lambda: _verify(lab, right=True)),
        ),
        Scenario(
            "resend",
            "resend_challenge",
            Target((one_write, Limit("sns_publishes", 1, exactly=True))),
            _same_challenge,
        ),
        Scenario("claim", "claim_challenge", Target(), lambda lab: _pair(lambda: _claim(lab))),
        Scenario("get", "get_challenge", Target(), _same_challenge),
        Scenario("jwks", "jwks", Target((Limit("total", 0, exactly=True),)), lambda lab: _pair(Request)),
        # The health handler promises "no dependency calls, so it is free to poll".
        Scenario("health", "health", Target((Limit("total", 0, exactly=True),)), lambda lab: _pair(Request)),
        Scenario(
            "authorizer (valid key)",
            "authorizer",
            Target(),
            lambda lab: _pair(lambda: Request(token=f"Bearer {API_KEY}")),
        ),
        # The facades: their requests next to the native ones they map to (the create's send target holds too).
        Scenario(
            "Twilio Verify create",
            "twilio_verify",
            Target((one_write, Limit("sns_publishes", 1, exactly=True))),
            lambda lab: _pair(lambda: _twilio_create(lab)),
        ),
        Scenario(
            "Twilio Verify check, right code",
            "twilio_verify",
            Target((Limit("writes", 2),)),
            lambda lab: _pair(lambda: _twilio_check(lab)),
        ),
        Scenario("Authsignal claim", "authsignal_server", Target(), lambda lab: _pair(lambda: _authsignal_claim(lab))),
    ]


def run_scenarios(lab: Lab, progress: Callable[[str], None] = print) -> list[ScenarioResult]:
    """Each scenario: prepare (unrecorded), reset the runtime and re-import the handler, then record two requests."""
    results = []
    folders = {function.folder for function in lab.template.functions.values()}
    for scenario in scenarios():
        if scenario.function not in folders:
            progress(f"aws calls: {scenario.name} skipped, no {scenario.function} function in the template")
            continue
        progress(f"aws calls: {scenario.name}")
        cold_request, warm_request = scenario.requests(lab)
        runtime.reset()
        with lab.recorder.record() as cold:
            cold_reply = lab.invoke(scenario.function, cold_request, fresh=True)
        with lab.recorder.record() as warm:
            warm_reply = lab.invoke(scenario.function, warm_request)
        results.append(ScenarioResult(scenario, cold, warm, cold_reply.status, warm_reply.status))
    return results


# ------------------------------------------------------------------------------------ memory events


@dataclass(frozen=True)
class EventPair:
    """The warm-up and measured events of one function, and where they come from (for the report)."""

    events: list[dict[str, Any]]
    source: str


def memory_events(lab: Lab) -> dict[str, EventPair]:
    """Two events per function (warm-up, measured), by function folder.

    The functions this benchmark knows get their events/ file made valid against the lab's data (real
    challenge IDs and codes). Any other function gets its events/ file as it is, or, without one, an event
    for its first route with no body; those may well answer 4xx, which the report shows.
    """
    known: dict[str, Callable[[], tuple[Request, Request]]] = {
        "create_challenge": lambda: _pair(lab.create_request),
        "verify_challenge": lambda: _pair(lambda: _verify(lab, right=True)),
        "resend_challenge": lambda: _same_challenge(lab),
        "claim_challenge": lambda: _pair(lambda: _claim(lab)),
        "get_challenge": lambda: _same_challenge(lab),
        "jwks": lambda: _pair(Request),
        "health": lambda: _pair(Request),
        "authorizer": lambda: _pair(lambda: Request(token=f"Bearer {API_KEY}")),
    }
    events: dict[str, EventPair] = {}
    for function in lab.template.functions.values():
        folder = function.folder
        if (EVENTS / f"{folder}.json").is_file():
            make = known.get(folder, lambda: _pair(Request))
            source = f"events/{folder}.json" + (", made valid" if folder in known else "")
            events[folder] = EventPair([build_event(load_event(folder), request) for request in make()], source)
        elif function.routes:
            route = function.routes[0]
            events[folder] = EventPair(
                [route_event(route.method, route.path) for _ in range(2)], f"none: {route.method} {route.path}"
            )
    return events


def route_event(method: str, path: str) -> dict[str, Any]:
    """An API Gateway event for ``method path`` without a body: events/create_challenge.json moved there.

    Path parameters get a well-formed random UUID, so the handler goes past routing.
    """
    event = build_event(load_event("create_challenge"), Request(body=None))
    names = re.findall(r"\{([^}+]+)\+?\}", path)
    parameters = {name: str(uuid.uuid4()) for name in names}
    concrete = re.sub(r"\{([^}+]+)\+?\}", lambda match: parameters[match.group(1)], path)
    event.update(
        resource=path,
        path=concrete,
        httpMethod=method,
        pathParameters=parameters or None,
    )
    event["requestContext"].update(resourcePath=path, httpMethod=method, path=f"/api{concrete}")
    return event
