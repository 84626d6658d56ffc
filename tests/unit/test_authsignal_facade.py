"""The Authsignal facade (/authsignal/v1): the server and client functions driven in-process over the unit fakes,
and the real Python SDK (``authsignal``) pointed at them through a requests adapter that calls the handlers.

Two apps share the stack, ``default`` (its key is the stack-generated one) and ``shop`` (a key made for it); each
app's use cases are a World of the unit fakes, which the runtime factories are patched to return, so every route
runs the native use case it maps to, with the native rules.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from authsignal import AuthsignalClient
from authsignal.client import ApiException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from functions.authsignal_client import app as client_function
from functions.authsignal_server import app as server_function
from local.gateway import LambdaContext
from otp_core import runtime
from otp_core.app_admin import KeyAuthority
from otp_core.apps import AppRecord, new_key, new_sid
from otp_core.errors import UnauthorizedError
from otp_core.facades import authsignal as facade
from otp_core.jwks import build_jwks
from otp_core.settings import Policy, Settings
from otp_core.token_verify import TokenVerifier
from tests.unit.conftest import World

BASE = "https://facade.test/api/authsignal/v1"
DEFAULT_KEY = "stack-generated-key-0123456789"
ADMIN_KEY = "admin-key-9876543210"
SHOP_ORIGIN = "https://shop.example"
TEST_NUMBER = "+14155550100"
NUMBERS = iter(f"+1415555{n:04d}" for n in range(2671, 9999, 7))
PASSKEY_ONLY_FACTORS = ["PASSKEY", "EMAIL_OTP", "EMAIL_MAGIC_LINK", "AUTHENTICATOR_APP", "PUSH", "SECURITY_KEY"]
RULES = json.dumps(
    {
        "actions": {"withdraw": {"default": "BLOCK", "rules": []}},
        "default": {"default": "ENROLLED_CHALLENGE", "rules": []},
    }
)


def number() -> str:
    """A fresh number (its own send counters)."""
    return next(NUMBERS)


# ------------------------------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    worlds: dict[str, World]
    shop_key: str
    store: Any

    @property
    def default(self) -> World:
        return self.worlds["default"]

    @property
    def shop(self) -> World:
        return self.worlds["shop"]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from tests.fakes import InMemoryAppStore

    test_numbers = json.dumps([{"phoneNumber": TEST_NUMBER, "code": "135790"}])
    default = World(Settings(allowed_origins=SHOP_ORIGIN, test_numbers=test_numbers), rules=RULES)
    shop = World(Settings(token_audience="urn:sms-otp:app:shop", sms_budget_per_hour=5))
    worlds = {"default": default, "shop": shop}
    store = InMemoryAppStore()
    now = default.clock.now()
    store.create(AppRecord("shop", "Shop", {}, now, new_sid()), "urn:sms-otp:app:shop")
    made = new_key("shop", None, now)
    store.add_key(made.key)
    authority = KeyAuthority(
        store,
        default.clock,
        default.policy,
        stack_secret=lambda: DEFAULT_KEY,
        admin_secret=lambda: ADMIN_KEY,
        seconds=0.0,
    )

    def policy(app_id: str = "default") -> Policy:
        record = store.get(app_id)
        if app_id not in worlds or (record is not None and record.deleted_at is not None):
            raise UnauthorizedError("the API key is not valid")
        return worlds[app_id].policy

    jwks = build_jwks(default.signer, [default.signer.key_id])

    def token_verifier(app_id: str | None = "default", audience: str | None = "") -> TokenVerifier:
        # The client routes find a token's app with the checks every app's tokens share (app and audience None).
        expected = default.policy.token_audience if audience == "" else audience
        issuer = default.settings.token_issuer
        return TokenVerifier(jwks, issuer=issuer, app_id=app_id, audience=expected, clock=default.clock)

    class Directory:
        def allowed_origins(self) -> frozenset[str]:
            return frozenset(default.policy.allowed_origins)

    runtime.reset()
    patches: dict[str, Callable[..., Any]] = {
        "settings": lambda: default.settings,
        "key_authority": lambda: authority,
        "policy": policy,
        "apps": Directory,
        "token_verifier": token_verifier,
        "tracker": lambda app_id="default": worlds[app_id].tracker,
        "token_validator": lambda app_id="default": worlds[app_id].validator,
        "identities": lambda app_id="default": worlds[app_id].identities,
        "authenticator_enroller": lambda app_id="default": worlds[app_id].enroller,
        "authenticator_directory": lambda app_id="default": worlds[app_id].directory,
        "challenge_starter": lambda app_id="default": worlds[app_id].starter,
        "code_checker": lambda app_id="default": worlds[app_id].checker,
        "challenge_records": lambda app_id="default": worlds[app_id].records,
        "token_issuer": lambda app_id="default": worlds[app_id].tokens,
        "client_flows": lambda app_id="default": worlds[app_id].client,
    }
    for name, replacement in patches.items():
        monkeypatch.setattr(runtime, name, replacement)
    yield Stack(worlds, made.secret, store)
    runtime.reset()


# ------------------------------------------------------------------------------------------------ HTTP in-process


def _context() -> LambdaContext:
    return LambdaContext(
        function_name="authsignal",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:authsignal",
        aws_request_id="r-1",
    )


def _event(method: str, target: str, headers: Mapping[str, str], body: bytes | str | None) -> dict[str, Any]:
    """The API Gateway REST proxy event of a request to ``<stage URL><target>`` (the stage is ``api``)."""
    parts = urlsplit(target)
    path = parts.path.removeprefix("/api")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(pairs)  # API Gateway's queryStringParameters: the last value of a repeated parameter
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    text = body.decode() if isinstance(body, bytes) else body
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "domainName": "facade.test",
            "stage": "api",
            "identity": {"sourceIp": "198.51.100.23"},
            "path": f"/api{path}",
        },
        "body": text or None,
        "isBase64Encoded": False,
    }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def invoke(method: str, path: str, body: Any = None, **headers: str) -> Answer:
    """A request to the facade (``path`` under /authsignal/v1), answered by the function that serves it."""
    target = f"/api/authsignal/v1{path}"
    raw = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    function = client_function if path.startswith("/client/") else server_function
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    proxy = function.lambda_handler(_event(method, target, headers, raw), _context())
    found = {name: values[-1] for name, values in (proxy.get("multiValueHeaders") or {}).items()}
    return Answer(proxy["statusCode"], found, proxy["body"])


def basic(key: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()


def server(method: str, path: str, body: Any = None, key: str = DEFAULT_KEY, **headers: str) -> Answer:
    return invoke(method, path, body, Authorization=basic(key), **headers)


def client(method: str, path: str, token: str, body: Any = None, **headers: str) -> Answer:
    return invoke(method, path, body, Authorization=f"Bearer {token}", Content_Type="application/json", **headers)


class LambdaAdapter(requests.adapters.BaseAdapter):
    """A requests transport that answers with the facade's functions, in-process (no socket)."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        parts = urlsplit(str(request.url))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        path = target.removeprefix("/api/authsignal/v1")
        function = client_function if path.startswith("/client/") else server_function
        headers = {name: value if isinstance(value, str) else value.decode() for name, value in request.headers.items()}
        body = request.body if isinstance(request.body, str | bytes) else None
        event = _event(str(request.method), target, headers, body)
        proxy = function.lambda_handler(event, _context())
        response = requests.Response()
        response.status_code = proxy["statusCode"]
        response.headers = CaseInsensitiveDict(
            {name: values[-1] for name, values in (proxy.get("multiValueHeaders") or {}).items()}
        )
        response._content = proxy["body"].encode()
        response.url = str(request.url)
        response.request = request
        response.reason = "OK" if response.status_code < 400 else "Error"
        return response

    def close(self) -> None:
        pass


def sdk(key: str = DEFAULT_KEY) -> AuthsignalClient:
    """The real Authsignal Python SDK, with its session's transport to the facade's functions."""
    found = AuthsignalClient(api_secret_key=key, api_url=BASE)
    found.session.mount("https://facade.test/", LambdaAdapter())
    return found


def sdk_post(found: AuthsignalClient, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A POST through the SDK's own session (its Basic auth, headers and error parsing): the sign-in trio the
    Node SDK calls (challenge, verify, claimChallenge), which the Python SDK has no methods for."""
    response = found.session.post(url=f"{found.api_url}{path}", data=json.dumps(body))
    content: dict[str, Any] = response.decamelized_content  # type: ignore[attr-defined]
    return content


def raised(call: Callable[[], object]) -> ApiException:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value


def enroll(world: World, user_id: str, phone_number: str) -> str:
    return world.enroller.enroll(user_id, phone_number, world.policy).authenticator_id


# ------------------------------------------------------------------------------------------------ answers and errors


def test_answers_and_errors_are_exactly_application_json_in_authsignal_s_shape(stack: Stack) -> None:
    ok = server("GET", "/users/user-1")
    refused = invoke("GET", "/users/user-1", Authorization=basic("wrong-key"))

    assert ok.status == 200
    assert ok.headers["Content-Type"] == "application/json"
    assert refused.status == 401
    assert refused.headers["Content-Type"] == "application/json"
    body = refused.json()
    assert set(body) == {"error", "errorCode", "errorDescription"}
    assert body["error"] == body["errorCode"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="authsignal"'
    # A success never carries an "error" key (the browser SDK reads one as an error)
    assert "error" not in ok.json()


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"token": NaN}', '{"token": 1e400}', '"\\ud800"', '{"token": 5}', "{" * 5000],
    ids=["text", "array", "nan", "overflow", "surrogate", "wrong-type", "deep"],
)
def test_bad_input_is_a_400_in_authsignal_s_shape_never_a_5xx(stack: Stack, body: str) -> None:
    answer = server("POST", "/validate", body)
    assert answer.status == 400
    assert answer.json()["errorCode"] == "invalid_request"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "phoneNumber",
        "phone_number",
        "action",
        "userId",
        "token",
        "verificationMethod",
        "verificationCode",
        "challengeId",
        "scope",
        "state",
        "custom",
        "ipAddress",
        "smsChannel",
        "skipVerificationCheck",
        "phoneNumberVerified",
        "redirectUrl",
        "deviceId",
    ]
) | st.text(max_size=12)
ROUTES = [
    ("POST", "/users/u-1/actions/signIn"),
    ("PATCH", "/users/u-1/actions/signIn/00000000-0000-4000-8000-000000000000"),
    ("PATCH", "/users/u-1"),
    ("POST", "/users/u-1/authenticators"),
    ("POST", "/validate"),
    ("POST", "/challenge"),
    ("POST", "/verify"),
    ("POST", "/claim"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=st.dictionaries(FIELDS, JSON_VALUES, max_size=5))
def test_no_body_makes_a_server_route_answer_a_5xx(stack: Stack, route: tuple[str, str], body: dict[str, Any]) -> None:
    answer = server(*route, body)
    assert answer.status < 500, answer.text
    assert answer.headers["Content-Type"] == "application/json"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/client/user-authenticators/sms", "/client/challenge/sms", "/client/verify/sms"]),
    body=st.dictionaries(FIELDS, JSON_VALUES, max_size=4),
    user=st.text(min_size=1, max_size=8, alphabet="abcdefghij"),
)
def test_no_body_makes_a_client_route_answer_a_5xx(stack: Stack, path: str, body: dict[str, Any], user: str) -> None:
    token = sdk().track(user_id=user, action="signIn")["token"]
    answer = client("POST", path, token, body)
    assert answer.status < 500, answer.text
    assert answer.headers["Content-Type"] == "application/json"


def test_an_unknown_route_is_a_404_in_authsignal_s_shape(stack: Stack) -> None:
    answer = server("GET", "/sessions/validate")
    assert answer.status == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["errorCode"] == "not_found"


def test_one_field_in_both_spellings_with_two_values_is_a_400(stack: Stack) -> None:
    answer = server("POST", "/users/u-1/actions/signIn", {"ipAddress": "203.0.113.7", "ip_address": "203.0.113.8"})
    assert answer.status == 400
    assert "ipAddress" in answer.json()["errorDescription"]


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        (
            "PATCH",
            "/users/u-1",
            '{"phoneNumber": "+14155552671", "phoneNumber": "+14155552672", "phoneNumberVerified": true}',
            "phoneNumber",
        ),
        ("POST", "/users/u-1/actions/signIn", '{"custom": {"plan": "free", "plan": "pro"}}', "plan"),
        ("POST", "/users/u-1/actions/signIn", '{"custom": {"items": [{"id": 1, "id": 1}]}}', "id"),
        ("POST", "/validate", '{"token": "t", "token": "t"}', "token"),
        ("POST", "/validate", '{"token": "t", "\\u00e9 x": 1, "\\u00e9 x": 2}', None),
    ],
    ids=["top-level", "nested", "in-a-list-same-value", "same-value", "odd-key"],
)
def test_a_key_given_twice_in_one_object_is_a_400(
    stack: Stack, method: str, path: str, body: str, named: str | None
) -> None:
    # When a body gives one key twice in an object, at any depth, with two values or the same one twice
    answer = server(method, path, body)

    # Then it is a 400 in Authsignal's shape that names the key when it is a plain name, and nothing happened
    assert answer.status == 400, answer.text
    assert answer.json()["errorCode"] == "invalid_request"
    description = answer.json()["errorDescription"]
    assert (f"{named} is given twice" if named else "gives a key twice") in description
    assert stack.default.identities.get_authenticator("u-1") is None
    assert stack.default.identities.attempts == {}


def test_a_key_given_twice_on_a_client_route_is_a_400(stack: Stack) -> None:
    token = sdk().track(user_id="u-2", action="signIn")["token"]
    body = '{"phoneNumber": "+14155552671", "phoneNumber": "+14155552672"}'
    answer = invoke("POST", "/client/user-authenticators/sms", body, Authorization=f"Bearer {token}")
    assert answer.status == 400
    assert answer.json()["errorCode"] == "invalid_request"
    assert stack.default.sender.sent == []


@pytest.mark.parametrize("key", ["phone__number", "phone_Number", "Phone_number", "phone_number_", "_phone_number"])
def test_a_key_that_is_not_real_snake_case_is_no_spelling_of_a_field(stack: Stack, key: str) -> None:
    # When a verified number comes under a key that only looks like phone_number
    answer = server("PATCH", "/users/u-3", {key: number(), "phoneNumberVerified": True})

    # Then it is an unknown field, not phoneNumber: nothing is enrolled
    assert answer.status == 400
    assert "phoneNumber" in answer.json()["errorDescription"]
    assert stack.default.identities.get_authenticator("u-3") is None


# ------------------------------------------------------------------------------------------------ credentials


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer " + DEFAULT_KEY,
        basic("wrong-key"),
        basic(DEFAULT_KEY, "password"),
        basic(ADMIN_KEY),
        "Basic not-base64!",
        "Basic " + base64.b64encode(DEFAULT_KEY.encode()).decode(),
    ],
    ids=["missing", "bearer", "unknown-key", "with-password", "admin-key", "garbage", "no-colon"],
)
def test_a_missing_wrong_or_admin_key_is_a_401(stack: Stack, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = invoke("POST", "/users/u-1/actions/signIn", {}, **headers)
    assert answer.status == 401
    assert answer.json()["errorCode"] == "unauthorized"
    assert stack.default.identities.attempts == {}  # nothing was tracked


def test_the_sdk_with_a_wrong_key_raises_its_api_exception(stack: Stack) -> None:
    error = raised(lambda: sdk("wrong-key").get_user(user_id="user-1"))
    assert error.status_code == 401
    assert error.error_code == "unauthorized"
    assert error.error_description


def test_a_deleted_app_s_key_is_refused(stack: Stack) -> None:
    assert server("GET", "/users/u-1", key=stack.shop_key).status == 200
    stack.store.delete("shop", stack.default.clock.now())
    assert server("GET", "/users/u-1", key=stack.shop_key).status == 401


def test_another_app_s_key_sees_nothing_of_this_app(stack: Stack) -> None:
    # Given a user of the default app with a number, a pending challenge and a validatable token
    enroll(stack.default, "user-1", number())
    phone = number()
    started = sdk_post(sdk(), "/challenge", {"verificationMethod": "SMS", "action": "signIn", "phoneNumber": phone})
    code = stack.default.sender.last_code()
    tracked = sdk().track(user_id="user-1", action="signIn")
    shop = sdk(stack.shop_key)

    # Then the shop's key sees no authenticator, cannot verify the challenge and cannot validate the token
    assert shop.get_authenticators(user_id="user-1") == []
    assert shop.get_user(user_id="user-1")["is_enrolled"] is False
    verified = sdk_post(shop, "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})
    assert verified == {"is_verified": False, "failure_reason": "CODE_INVALID_OR_EXPIRED"}
    validation = shop.validate_challenge({"token": tracked["token"]})
    assert validation["is_valid"] is False
    assert validation["failure_reason"] == "TOKEN_INVALID_OR_EXPIRED"
    # And the default app's challenge still verifies with its own key
    assert sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})["is_verified"]


# ------------------------------------------------------------------------------------------------ track and actions


@pytest.mark.parametrize(
    "attributes",
    [
        {"deviceId": "phone-1", "ipAddress": "203.0.113.7", "userAgent": "sdk-test", "custom": {"amount": 5}},
        {"device_id": "phone-1", "ip_address": "203.0.113.7", "user_agent": "sdk-test", "custom": {"amount": 5}},
    ],
    ids=["camelCase", "snake_case"],
)
def test_track_answers_authsignal_s_track_response(stack: Stack, attributes: dict[str, Any]) -> None:
    # When an unenrolled user's sign-in is tracked (unknown vendor fields such as email are ignored)
    tracked = sdk().track(user_id="user-1", action="signIn", attributes={**attributes, "email": "a@example.com"})

    # Then the default rules allow it, and the answer is Authsignal's (decamelized by the SDK)
    assert tracked["state"] == "ALLOW"
    assert tracked["is_enrolled"] is False
    assert tracked["enrolled_verification_methods"] == []
    assert tracked["allowed_verification_methods"] == ["SMS"]
    assert tracked["url"] == f"https://facade.test/api/v1/hosted/challenge#token={tracked['token']}"
    attempt = stack.default.identities.attempts[tracked["idempotency_key"]]
    assert (attempt.user_id, attempt.action, attempt.device_key) == ("user-1", "signIn", "user-1/phone-1")


def test_track_of_an_enrolled_user_requires_a_challenge(stack: Stack) -> None:
    enroll(stack.default, "user-2", number())
    tracked = sdk().track(user_id="user-2", action="signIn")
    assert tracked["state"] == "CHALLENGE_REQUIRED"
    assert tracked["is_enrolled"] is True
    assert tracked["enrolled_verification_methods"] == ["SMS"]
    assert tracked["default_verification_method"] == "SMS"


def test_a_blocked_action_has_no_url(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-1", action="withdraw")
    assert tracked["state"] == "BLOCK"
    assert "url" not in tracked


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"idempotencyKey": "mine"}, "idempotencyKey"),
        ({"challenge_id": "c-1"}, "challengeId"),
        ({"scope": "add:authenticators"}, "scope"),
        ({"phoneNumber": "4155552671"}, "phoneNumber"),
        ({"ipAddress": "not-an-address"}, "ipAddress"),
    ],
    ids=["idempotency-key", "challenge-id", "scope", "not-e164", "bad-ip"],
)
def test_track_refuses_fields_that_would_weaken_a_rule_or_break_one(
    stack: Stack, attributes: dict[str, Any], field: str
) -> None:
    error = raised(lambda: sdk().track(user_id="user-1", action="signIn", attributes=attributes))
    assert error.status_code == 400
    assert error.error_code == "invalid_request"
    assert field in error.error_description
    assert stack.default.identities.attempts == {}


def test_track_accepts_the_default_read_scope(stack: Stack) -> None:
    assert sdk().track(user_id="u", action="signIn", attributes={"scope": "read:authenticators"})["state"] == "ALLOW"


def test_get_action_answers_the_tracked_attempt_and_its_success(stack: Stack) -> None:
    # Given a tracked sign-in
    tracked = sdk().track(user_id="user-1", action="signIn")
    key = tracked["idempotency_key"]

    # Then it reads back with its state and dates
    action = sdk().get_action(user_id="user-1", action="signIn", idempotency_key=key)
    assert action["state"] == "ALLOW"
    assert action["created_at"] == action["state_updated_at"]

    # And once its challenge succeeded (client enroll and verify), the action says so
    claims = stack.default.client.authenticate(f"Bearer {tracked['token']}", stack.default.policy)
    stack.default.client.enroll(claims, number(), stack.default.policy)
    stack.default.clock.advance(30)
    stack.default.client.verify(claims, stack.default.sender.last_code(), stack.default.policy)
    action = sdk().get_action(user_id="user-1", action="signIn", idempotency_key=key)
    assert action["state"] == "CHALLENGE_SUCCEEDED"
    assert action["verification_method"] == "SMS"
    assert action["state_updated_at"] > action["created_at"]


@pytest.mark.parametrize(
    ("user_id", "action", "key"),
    [("user-2", "signIn", None), ("user-1", "withdraw", None), ("user-1", "signIn", "0" * 8)],
    ids=["another-user", "another-action", "unknown-key"],
)
def test_get_action_of_another_user_or_action_or_key_is_a_404(
    stack: Stack, user_id: str, action: str, key: str | None
) -> None:
    tracked = sdk().track(user_id="user-1", action="signIn")
    idempotency_key = key or tracked["idempotency_key"]
    error = raised(lambda: sdk().get_action(user_id=user_id, action=action, idempotency_key=idempotency_key))
    assert error.status_code == 404
    assert error.error_code == "not_found"


def test_update_action_changes_no_state(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-1", action="signIn")
    key = tracked["idempotency_key"]

    # The state the action has is a no-op; any other is refused, and nothing changes
    same = sdk().update_action(user_id="user-1", action="signIn", idempotency_key=key, attributes={"state": "ALLOW"})
    assert same["state"] == "ALLOW"
    for state in ("REVIEW_SUCCEEDED", "REVIEW_FAILED", "CHALLENGE_SUCCEEDED", "BLOCK"):
        error = raised(
            lambda state=state: sdk().update_action(
                user_id="user-1", action="signIn", idempotency_key=key, attributes={"state": state}
            )
        )
        assert error.status_code == 400
        assert error.error_code == "invalid_request"
    assert stack.default.identities.attempts[key].state == "ALLOW"
    error = raised(
        lambda: sdk().update_action(user_id="user-1", action="signIn", idempotency_key=key, attributes={"state": "X"})
    )
    assert error.status_code == 400


# ------------------------------------------------------------------------------------------------ users


def test_get_user_answers_what_the_service_knows_with_the_number_masked(stack: Stack) -> None:
    assert sdk().get_user(user_id="nobody") == {
        "is_enrolled": False,
        "enrolled_verification_methods": [],
        "allowed_verification_methods": ["SMS"],
        "phone_number_verified": False,
        "email_verified": False,
    }
    phone = number()
    enroll(stack.default, "user-3", phone)
    user = sdk().get_user(user_id="user-3")
    assert user["is_enrolled"] is True
    assert user["enrolled_verification_methods"] == ["SMS"]
    assert user["phone_number"] == "******" + phone[-4:]


@pytest.mark.parametrize(
    "attributes",
    [
        {"phoneNumber": "{phone}", "phoneNumberVerified": True},
        {"phone_number": "{phone}", "phone_number_verified": True},
    ],
    ids=["camelCase", "snake_case"],
)
def test_update_user_with_a_verified_number_enrolls_or_replaces_it(stack: Stack, attributes: dict[str, Any]) -> None:
    first, second = number(), number()
    body = {name: (first if value == "{phone}" else value) for name, value in attributes.items()}
    updated = sdk().update_user(user_id="user-4", attributes=body)
    assert updated == {"user_id": "user-4", "phone_number": "******" + first[-4:]}
    original = stack.default.identities.get_authenticator("user-4")
    assert original is not None and original.phone_number == first

    body = {name: (second if value == "{phone}" else value) for name, value in attributes.items()}
    sdk().update_user(user_id="user-4", attributes=body)
    replaced = stack.default.identities.get_authenticator("user-4")
    assert replaced is not None and replaced.phone_number == second
    assert replaced.authenticator_id != original.authenticator_id


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"phoneNumber": "+14155552671"}, "phoneNumberVerified"),
        ({"phoneNumberVerified": True}, "phoneNumber"),
        ({"email": "a@example.com"}, "email"),
        ({"displayName": "Jane"}, "displayName"),
        ({"custom": {"tier": "gold"}}, "custom"),
        ({"defaultVerificationMethod": "PASSKEY"}, "defaultVerificationMethod"),
        ({"phoneNumber": TEST_NUMBER, "phoneNumberVerified": True}, "test number"),
    ],
    ids=["unverified-number", "verified-alone", "email", "display-name", "custom", "default-passkey", "test-number"],
)
def test_update_user_refuses_attributes_this_service_does_not_have(
    stack: Stack, attributes: dict[str, Any], field: str
) -> None:
    error = raised(lambda: sdk().update_user(user_id="user-5", attributes=attributes))
    assert error.status_code == 400
    assert error.error_code == "invalid_request"
    assert field in error.error_description
    assert stack.default.identities.get_authenticator("user-5") is None


def test_delete_user_deletes_the_authenticator_and_cancels_its_enrollments(stack: Stack) -> None:
    enroll(stack.default, "user-6", number())
    assert sdk().delete_user(user_id="user-6") is None
    assert sdk().get_user(user_id="user-6")["is_enrolled"] is False
    assert stack.default.identities.get_authenticator("user-6") is None
    # Deleting a user who has nothing is no error
    assert server("DELETE", "/users/user-6").json() == {"success": True}


@pytest.mark.parametrize(
    "query",
    ["actions=true", "actions=TRUE", "actions=true&actions=false", "actions=false&actions=True"],
    ids=["true", "upper-case", "true-then-false", "false-then-true"],
)
def test_delete_user_with_its_actions_is_refused(stack: Stack, query: str) -> None:
    # Given an enrolled user
    enroll(stack.default, "user-7", number())

    # When the delete asks for its actions too, in any case and among other values of the parameter
    answer = server("DELETE", f"/users/user-7?{query}")

    # Then it is refused and nothing is deleted
    assert answer.status == 400
    assert "actions" in answer.json()["errorDescription"]
    assert stack.default.identities.get_authenticator("user-7") is not None


def test_delete_user_without_its_actions_deletes(stack: Stack) -> None:
    enroll(stack.default, "user-7", number())
    assert server("DELETE", "/users/user-7?actions=false&actions=false").json() == {"success": True}
    assert stack.default.identities.get_authenticator("user-7") is None


# ------------------------------------------------------------------------------------------------ authenticators


@pytest.mark.parametrize(
    "attributes",
    [
        {"verificationMethod": "SMS", "phoneNumber": "{phone}"},
        {"verification_method": "SMS", "phone_number": "{phone}"},
    ],
    ids=["camelCase", "snake_case"],
)
def test_enroll_list_and_delete_an_sms_authenticator(stack: Stack, attributes: dict[str, Any]) -> None:
    phone = number()
    body = {name: (phone if value == "{phone}" else value) for name, value in attributes.items()}

    enrolled = sdk().enroll_verified_authenticator(user_id="user-8", attributes={**body, "isDefault": True})
    authenticator = enrolled["authenticator"]
    assert authenticator["verification_method"] == "SMS"
    assert authenticator["phone_number"] == "******" + phone[-4:]
    assert authenticator["user_id"] == "user-8"
    assert authenticator["created_at"] and authenticator["verified_at"]

    # The list is the bare array the SDKs index
    listed = sdk().get_authenticators(user_id="user-8")
    assert isinstance(listed, list)
    assert listed[0]["user_authenticator_id"] == authenticator["user_authenticator_id"]
    assert phone not in json.dumps(listed)

    assert (
        sdk().delete_authenticator(user_id="user-8", user_authenticator_id=listed[0]["user_authenticator_id"]) is None
    )
    assert sdk().get_authenticators(user_id="user-8") == []
    error = raised(lambda: sdk().delete_authenticator(user_id="user-8", user_authenticator_id="gone"))
    assert (error.status_code, error.error_code) == (404, "not_found")


@pytest.mark.parametrize("method", PASSKEY_ONLY_FACTORS)
def test_enrolling_another_factor_is_a_clear_400(stack: Stack, method: str) -> None:
    attributes = {"verificationMethod": method, "email": "a@example.com", "phoneNumber": number()}
    error = raised(lambda: sdk().enroll_verified_authenticator(user_id="user-9", attributes=attributes))
    assert error.status_code == 400
    assert error.error_code == "invalid_request"
    assert f"{method} is not available" in error.error_description
    assert stack.default.identities.get_authenticator("user-9") is None


@pytest.mark.parametrize(
    ("attributes", "field"),
    [({"phoneNumber": "+14155552671"}, "verificationMethod"), ({"verificationMethod": "SMS"}, "phoneNumber")],
    ids=["no-method", "no-number"],
)
def test_enrolling_without_a_method_or_a_number_is_a_400(stack: Stack, attributes: dict[str, Any], field: str) -> None:
    error = raised(lambda: sdk().enroll_verified_authenticator(user_id="user-9", attributes=attributes))
    assert error.status_code == 400
    assert field in error.error_description


def test_a_test_number_is_never_enrolled(stack: Stack) -> None:
    attributes = {"verificationMethod": "SMS", "phoneNumber": TEST_NUMBER}
    error = raised(lambda: sdk().enroll_verified_authenticator(user_id="user-9", attributes=attributes))
    assert error.status_code == 400


# ------------------------------------------------------------------------------------------------ validate


def _succeeded_token(stack: Stack, user_id: str, action: str = "signIn") -> str:
    """A CHALLENGE_SUCCEEDED client token: track, then enroll a number and verify it through the client routes."""
    tracked = sdk().track(user_id=user_id, action=action)
    client("POST", "/client/user-authenticators/sms", tracked["token"], {"phoneNumber": number()})
    verified = client(
        "POST", "/client/verify/sms", tracked["token"], {"verificationCode": stack.default.sender.last_code()}
    )
    token: str = verified.json()["accessToken"]
    return token


def test_validate_accepts_a_succeeded_token_once(stack: Stack) -> None:
    token = _succeeded_token(stack, "user-10")

    validation = sdk().validate_challenge({"token": token, "action": "signIn"})
    assert validation["is_valid"] is True
    assert validation["state"] == "CHALLENGE_SUCCEEDED"
    assert validation["user_id"] == "user-10"
    assert validation["action"] == "signIn"
    assert validation["verification_method"] == "SMS"
    assert validation["idempotency_key"] and validation["state_updated_at"]

    again = sdk().validate_challenge({"token": token})
    assert again["is_valid"] is False
    assert again["failure_reason"] == "TOKEN_ALREADY_USED"


def test_validate_of_a_track_token_says_its_state(stack: Stack) -> None:
    enroll(stack.default, "user-11", number())
    tracked = sdk().track(user_id="user-11", action="signIn")
    validation = sdk().validate_challenge({"token": tracked["token"]})
    assert validation["is_valid"] is False
    assert validation["state"] == "CHALLENGE_REQUIRED"
    assert validation["user_id"] == "user-11"
    assert validation["idempotency_key"] == tracked["idempotency_key"]
    assert validation["failure_reason"] == "CHALLENGE_NOT_COMPLETED"


def test_validate_refuses_another_user_s_token_without_spending_it(stack: Stack) -> None:
    token = _succeeded_token(stack, "user-12")
    refused = sdk().validate_challenge({"token": token, "user_id": "someone-else"})
    assert refused["is_valid"] is False
    assert refused["failure_reason"] == "USER_MISMATCH"
    assert sdk().validate_challenge({"token": token, "userId": "user-12"})["is_valid"] is True


def test_validate_of_another_action_or_garbage(stack: Stack) -> None:
    token = _succeeded_token(stack, "user-13")
    assert sdk().validate_challenge({"token": token, "action": "withdraw"})["failure_reason"] == "ACTION_MISMATCH"
    for token in ("not.a.token", "a." + base64.urlsafe_b64encode(b"[" * 5000).decode() + ".b", "x"):
        garbage = sdk().validate_challenge({"token": token, "user_id": "user-13"})
        assert garbage["failure_reason"] == "TOKEN_INVALID_OR_EXPIRED"


# ------------------------------------------------------------------------------------------------ challenge, verify, claim


def _challenge(found: AuthsignalClient, phone: str, **fields: Any) -> dict[str, Any]:
    return sdk_post(
        found, "/challenge", {"verificationMethod": "SMS", "action": "signInWithSms", "phoneNumber": phone, **fields}
    )


def test_the_sign_in_trio_challenge_verify_claim_then_validate(stack: Stack) -> None:
    phone = number()
    now = stack.default.clock.now()

    started = _challenge(sdk(), phone, locale="fr")
    assert started["expires_at"] == now + stack.default.policy.code_ttl_seconds
    assert started["idempotency_key"] == started["challenge_id"]
    assert stack.default.sender.sent[-1].to == phone
    code = stack.default.sender.last_code()

    # A wrong code, then the right one (snake_case keys, as a Python caller writes them)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    failed = sdk_post(sdk(), "/verify", {"challenge_id": started["challenge_id"], "verification_code": wrong})
    assert failed == {"is_verified": False, "failure_reason": "CODE_INVALID_OR_EXPIRED"}
    verified = sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})
    assert verified == {"is_verified": True, "verification_method": "SMS", "phone_number": phone}

    # The code is single use
    reused = sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})
    assert reused["is_verified"] is False

    # The claim attributes it and issues the one token, which validates once
    claimed = sdk_post(sdk(), "/claim", {"challengeId": started["challenge_id"], "userId": "user-20"})
    assert claimed["verification_method"] == "SMS"
    validation = sdk().validate_challenge({"token": claimed["token"], "action": "signInWithSms"})
    assert validation["is_valid"] is True
    assert validation["user_id"] == "user-20"
    assert validation["idempotency_key"] == started["challenge_id"]
    assert sdk().validate_challenge({"token": claimed["token"]})["failure_reason"] == "TOKEN_ALREADY_USED"

    # A second claim issues no second token
    error = raised(lambda: sdk_post(sdk(), "/claim", {"challengeId": started["challenge_id"], "userId": "user-20"}))
    assert (error.status_code, error.error_code) == (409, "conflict")


def test_a_claim_before_verify_or_by_another_user_is_a_409_and_skipping_verification_is_refused(stack: Stack) -> None:
    started = _challenge(sdk(), number())
    body = {"challengeId": started["challenge_id"], "userId": "user-21"}
    assert raised(lambda: sdk_post(sdk(), "/claim", body)).status_code == 409
    refused = raised(lambda: sdk_post(sdk(), "/claim", {**body, "skipVerificationCheck": True}))
    assert refused.status_code == 400
    assert "skipVerificationCheck" in refused.error_description
    assert raised(lambda: sdk_post(sdk(), "/claim", {"challengeId": "unknown", "userId": "u"})).status_code == 409


def test_a_code_verified_after_expiry_is_refused(stack: Stack) -> None:
    started = _challenge(sdk(), number())
    code = stack.default.sender.last_code()
    stack.default.clock.advance(stack.default.policy.code_ttl_seconds + 1)
    verified = sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})
    assert verified == {"is_verified": False, "failure_reason": "CODE_INVALID_OR_EXPIRED"}


def test_attempts_run_out_and_the_lockout_holds(stack: Stack) -> None:
    phone = number()
    attempts = stack.default.policy.max_attempts

    # Every allowed wrong attempt of a challenge, then the right code: the challenge is exhausted
    started = _challenge(sdk(), phone)
    code = stack.default.sender.last_code()
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    for _ in range(attempts):
        sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": wrong})
    exhausted = sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})
    assert exhausted == {"is_verified": False, "failure_reason": "MAX_ATTEMPTS_EXCEEDED"}

    # Enough failures on the number lock it: its next challenge is a 429 with Retry-After
    second = _challenge(sdk(), phone)
    for _ in range(stack.default.policy.lockout_threshold - attempts):
        sdk_post(sdk(), "/verify", {"challengeId": second["challenge_id"], "verificationCode": wrong})
    locked = server("POST", "/challenge", {"verificationMethod": "SMS", "action": "signIn", "phoneNumber": phone})
    assert locked.status == 429
    assert locked.json()["errorCode"] == "too_many_requests"
    assert int(locked.headers["Retry-After"]) > 0


def test_the_send_cap_holds(stack: Stack) -> None:
    phone = number()
    for _ in range(stack.default.policy.max_sends_per_10_minutes):
        _challenge(sdk(), phone)
    error = raised(lambda: _challenge(sdk(), phone))
    assert (error.status_code, error.error_code) == (429, "too_many_requests")


def test_the_fraud_guard_holds(stack: Stack) -> None:
    from otp_core.fraud import Block, Reason, parse_bucket

    now = stack.default.clock.now()
    stack.default.fraud.put_block(Block("*", parse_bucket("country:US"), Reason.MANUAL, now, None))
    answer = server("POST", "/challenge", {"verificationMethod": "SMS", "action": "signIn", "phoneNumber": number()})
    assert answer.status == 403
    assert answer.json()["errorCode"] == "destination_blocked"
    assert stack.default.sender.sent == []


def test_the_app_s_budget_holds(stack: Stack) -> None:
    shop = sdk(stack.shop_key)
    for _ in range(4):
        _challenge(shop, number())
    error = raised(lambda: _challenge(shop, number()))
    assert (error.status_code, error.error_code) == (429, "too_many_requests")
    assert len(stack.shop.sender.sent) == 4
    assert stack.default.sender.sent == []  # the shop's sends are the shop's


def test_user_ids_are_url_encoded_by_the_sdk_and_decoded_here(stack: Stack) -> None:
    user_id = "jane doe+1@example.com"
    sdk().enroll_verified_authenticator(
        user_id=user_id, attributes={"verificationMethod": "SMS", "phoneNumber": number()}
    )
    assert stack.default.identities.get_authenticator(user_id) is not None
    tracked = sdk().track(user_id=user_id, action="signIn")
    assert tracked["state"] == "CHALLENGE_REQUIRED"
    assert sdk().get_action(user_id=user_id, action="signIn", idempotency_key=tracked["idempotency_key"])["state"]


def test_a_user_id_that_is_not_ascii_is_decoded_as_utf_8(stack: Stack) -> None:
    user_id = "jos\u00e9"  # the SDK sends it as jos%C3%A9
    phone = number()
    sdk().enroll_verified_authenticator(user_id=user_id, attributes={"verificationMethod": "SMS", "phoneNumber": phone})
    assert stack.default.identities.get_authenticator(user_id) is not None
    assert sdk().get_user(user_id=user_id)["phone_number"] == "******" + phone[-4:]
    assert server("GET", "/users/jos%C3%A9").json()["isEnrolled"] is True


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/users/alias%FF", "userId"),
        ("GET", "/users/alias%FE", "userId"),
        ("GET", "/users/alias%C0", "userId"),
        ("PATCH", "/users/alias%FF", "userId"),
        ("DELETE", "/users/alias%FF", "userId"),
        ("GET", "/users/alias%FF/authenticators", "userId"),
        ("POST", "/users/alias%FF/actions/signIn", "userId"),
        ("POST", "/users/alias/actions/signIn%FF", "action"),
        ("GET", "/users/alias/actions/signIn%FF/00000000-0000-4000-8000-000000000000", "action"),
        ("GET", "/users/alias/actions/signIn/0000%FF", "idempotencyKey"),
        ("PATCH", "/users/alias/actions/signIn/0000%FF", "idempotencyKey"),
        ("DELETE", "/users/alias/authenticators/a%FF", "userAuthenticatorId"),
    ],
)
def test_a_path_parameter_that_is_not_utf_8_is_a_400_not_another_spelling_of_a_name(
    stack: Stack, method: str, path: str, field: str
) -> None:
    # Given a user whose ID is what lenient decoding makes of alias%FF, alias%FE and alias%C0 (alias + U+FFFD)
    enroll(stack.default, "alias\ufffd", number())

    # When a path names a user, action, key or authenticator with bytes that are not UTF-8
    answer = server(method, path, {"state": "ALLOW"} if method == "PATCH" and "actions" in path else None)

    # Then it is a 400 naming the parameter, and the user is untouched
    assert answer.status == 400, answer.text
    assert answer.json()["errorCode"] == "invalid_request"
    assert f"{field}: not percent-encoded UTF-8" in answer.json()["errorDescription"]
    assert stack.default.identities.get_authenticator("alias\ufffd") is not None
    # And the one spelling of that user is still its UTF-8 encoding
    assert server("GET", "/users/alias%EF%BF%BD").json()["isEnrolled"] is True


def test_a_test_number_gets_its_fixed_code_and_reaches_no_provider(stack: Stack) -> None:
    started = _challenge(sdk(), TEST_NUMBER)
    assert stack.default.sender.sent == []
    assert stack.default.test_sender.sent[-1].to == TEST_NUMBER
    verified = sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": "135790"})
    assert verified["is_verified"] is True


def test_a_challenge_with_a_user_and_scope_enrolls_on_verify(stack: Stack) -> None:
    phone = number()
    started = _challenge(sdk(), phone, userId="user-22", scope="add:authenticators update:authenticators")
    code = stack.default.sender.last_code()
    assert sdk_post(sdk(), "/verify", {"challengeId": started["challenge_id"], "verificationCode": code})["is_verified"]
    enrolled = stack.default.identities.get_authenticator("user-22")
    assert enrolled is not None and enrolled.phone_number == phone


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"verificationMethod": "EMAIL_OTP", "email": "a@example.com"}, "EMAIL_OTP"),
        ({"smsChannel": "WHATSAPP"}, "WhatsApp"),
        ({"idempotencyKey": "mine"}, "idempotencyKey"),
        ({"challengeId": "c-1"}, "challengeId"),
        ({"scope": "remove:authenticators", "userId": "u"}, "scope"),
        ({"phoneNumber": "+114155552671"}, "phoneNumber"),
        ({"action": "bad action!"}, "action"),
    ],
    ids=["email-otp", "whatsapp", "idempotency-key", "challenge-id", "scope", "trunk-prefix", "action"],
)
def test_challenge_refuses_what_this_service_does_not_offer(stack: Stack, fields: dict[str, Any], field: str) -> None:
    body = {"verificationMethod": "SMS", "action": "signIn", "phoneNumber": number(), **fields}
    answer = server("POST", "/challenge", body)
    assert answer.status == 400
    assert answer.json()["errorCode"] == "invalid_request"
    assert field in answer.json()["errorDescription"]
    assert stack.default.sender.sent == []


def test_verify_checks_its_fields(stack: Stack) -> None:
    no_id = server("POST", "/verify", {"verificationCode": "123456"})
    assert no_id.status == 400 and "challengeId" in no_id.json()["errorDescription"]
    bad_code = server("POST", "/verify", {"challengeId": "c", "verificationCode": "12ab"})
    assert bad_code.status == 400 and "verificationCode" in bad_code.json()["errorDescription"]


def test_field_errors_read_as_sentences(stack: Stack) -> None:
    key = sdk().track(user_id="u-40", action="signIn")["idempotency_key"]

    not_a_string = server("POST", "/verify", {"challengeId": 5, "verificationCode": "123456"})
    no_state = server("PATCH", f"/users/u-40/actions/signIn/{key}", {})
    bad_state = server("PATCH", f"/users/u-40/actions/signIn/{key}", {"state": "X"})

    descriptions = [answer.json()["errorDescription"] for answer in (not_a_string, no_state, bad_state)]
    assert descriptions[0].startswith("challengeId must be a string of 1-256 characters (")
    assert descriptions[1] == "state is required (state: required)"
    assert descriptions[2].startswith("state must be one of ALLOW, BLOCK, ")
    assert all(" is must " not in description for description in descriptions)


def test_a_code_of_the_wrong_length_is_named_verification_code(stack: Stack) -> None:
    # Given a server challenge and a client enrollment, each with a code sent
    started = _challenge(sdk(), number())
    length = len(stack.default.sender.last_code())
    token = sdk().track(user_id="u-41", action="signIn")["token"]
    client("POST", "/client/user-authenticators/sms", token, {"phoneNumber": number()})

    # When each is verified with a code one digit short (the wire model's 4-10 digits, not the policy's length)
    short = "1" * (length - 1)
    answers = [
        server("POST", "/verify", {"challengeId": started["challenge_id"], "verificationCode": short}),
        client("POST", "/client/verify/sms", token, {"verificationCode": short}),
    ]

    # Then the 400 names the field as the Authsignal request does, in its description too
    for answer in answers:
        assert answer.status == 400
        expected = (
            f"verificationCode must be exactly {length} digits (verificationCode: must be exactly {length} digits)"
        )
        assert answer.json()["errorDescription"] == expected


# ------------------------------------------------------------------------------------------------ client routes


def test_the_client_enroll_and_verify_of_the_browser_sdk(stack: Stack) -> None:
    # Given a track of an unenrolled user
    tracked = sdk().track(user_id="user-30", action="signIn")
    phone = number()

    # When the browser SDK enrolls a number and verifies a wrong, then the right code
    enrolled = client("POST", "/client/user-authenticators/sms", tracked["token"], {"phoneNumber": phone})
    assert enrolled.status == 200
    assert enrolled.headers["Content-Type"] == "application/json"
    body = enrolled.json()
    assert body["userId"] == "user-30"
    assert body["userAuthenticatorId"] == body["challengeId"]
    code = stack.default.sender.last_code()
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    failed = client("POST", "/client/verify/sms", tracked["token"], {"verificationCode": wrong}).json()
    assert failed == {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED"}
    verified = client("POST", "/client/verify/sms", tracked["token"], {"verificationCode": code}).json()

    # Then it is verified, the accessToken is the CHALLENGE_SUCCEEDED token, and the new authenticator is named
    assert verified["isVerified"] is True
    assert "error" not in verified
    authenticator = stack.default.identities.get_authenticator("user-30")
    assert authenticator is not None and authenticator.phone_number == phone
    assert verified["userAuthenticator"]["userAuthenticatorId"] == authenticator.authenticator_id
    assert verified["userAuthenticator"]["phoneNumber"] == "******" + phone[-4:]
    assert sdk().validate_challenge({"token": verified["accessToken"]})["is_valid"] is True

    # And the code is single use
    reused = client("POST", "/client/verify/sms", tracked["token"], {"verificationCode": code}).json()
    assert reused["isVerified"] is False


def test_the_client_challenge_of_an_enrolled_user(stack: Stack) -> None:
    phone = number()
    enroll(stack.default, "user-31", phone)
    tracked = sdk().track(user_id="user-31", action="signIn")

    sent = client("POST", "/client/challenge/sms", tracked["token"], {"smsChannel": "DEFAULT"})
    assert sent.status == 200
    assert set(sent.json()) == {"challengeId"}
    assert stack.default.sender.sent[-1].to == phone
    # A reload inside the cooldown sends nothing and answers the same challenge (no body, as the SDK sends it)
    again = client("POST", "/client/challenge/sms", tracked["token"])
    assert again.json() == sent.json()
    assert len(stack.default.sender.sent) == 1

    verified = client(
        "POST", "/client/verify/sms", tracked["token"], {"verification_code": stack.default.sender.last_code()}
    )
    assert verified.json()["isVerified"] is True
    assert "userAuthenticator" not in verified.json()


def test_an_expired_client_token_is_authsignal_s_expired_token(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-32", action="signIn")
    stack.default.clock.advance(stack.default.policy.token_ttl_seconds + 10)

    answer = client("POST", "/client/user-authenticators/sms", tracked["token"], {"phoneNumber": number()})

    assert answer.status == 401
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    # The browser SDK calls onTokenExpired when the answer has "error" and errorCode expired_token
    assert "error" in body
    assert body["errorCode"] == "expired_token"
    assert stack.default.sender.sent == []


@pytest.mark.parametrize("authorization", [None, "Bearer forged.token.here", basic("tenant-id")])
def test_a_missing_or_forged_client_token_is_refused(stack: Stack, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = invoke("POST", "/client/challenge/sms", {}, **headers)
    assert answer.status == 401
    assert answer.json()["errorCode"] == "expired_token"


def test_a_server_key_is_no_client_token_and_a_client_token_no_server_key(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-33", action="signIn")
    assert client("POST", "/client/challenge/sms", DEFAULT_KEY).status == 401
    as_key = invoke("GET", "/users/user-33", Authorization=f"Bearer {tracked['token']}")
    assert as_key.status == 401


def test_a_blocked_action_is_a_403_on_the_client_routes(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-34", action="withdraw")
    answer = client("POST", "/client/user-authenticators/sms", tracked["token"], {"phoneNumber": number()})
    assert answer.status == 403
    assert answer.json()["errorCode"] == "forbidden"


def test_an_enrolled_user_changes_the_number_only_after_a_challenge(stack: Stack) -> None:
    enroll(stack.default, "user-35", number())
    tracked = sdk().track(user_id="user-35", action="signIn")
    answer = client("POST", "/client/user-authenticators/sms", tracked["token"], {"phoneNumber": number()})
    assert answer.status == 403


def test_the_client_challenge_of_an_unenrolled_user_is_a_409(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-36", action="signIn")
    answer = client("POST", "/client/challenge/sms", tracked["token"])
    assert answer.status == 409
    assert answer.json()["errorCode"] == "conflict"


@pytest.mark.parametrize(
    ("path", "factor"),
    [
        ("/client/user-authenticators/passkey", "PASSKEY"),
        ("/client/user-authenticators/passkey/registration-options/web", "PASSKEY"),
        ("/client/verify/totp", "AUTHENTICATOR_APP"),
        ("/client/challenge/email-otp", "EMAIL_OTP"),
        ("/client/verify/email-magic-link/finalize", "EMAIL_MAGIC_LINK"),
        ("/client/challenge/push", "PUSH"),
        ("/client/user-authenticators/security-key", "SECURITY_KEY"),
        ("/client/challenge/whatsapp", "WHATSAPP"),
    ],
)
def test_other_factors_client_routes_are_a_clear_400(stack: Stack, path: str, factor: str) -> None:
    tracked = sdk().track(user_id="user-37", action="signIn")
    answer = client("POST", path, tracked["token"], {"email": "a@example.com"})
    assert answer.status == 400
    body = answer.json()
    assert body["errorCode"] == "invalid_request"
    assert f"{factor} is not available" in body["errorDescription"]


def test_an_unknown_client_route_is_a_404(stack: Stack) -> None:
    assert invoke("GET", "/client/nothing/here").status == 404


def test_another_factor_s_preflight_passes_so_the_browser_reads_its_400(stack: Stack) -> None:
    preflight = invoke("OPTIONS", "/client/verify/totp", Origin=SHOP_ORIGIN, Access_Control_Request_Method="POST")
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN


@pytest.mark.parametrize("path", ["/client/user-authenticators/sms", "/client/challenge/sms"])
def test_whatsapp_is_refused_on_the_client_routes(stack: Stack, path: str) -> None:
    tracked = sdk().track(user_id="user-38", action="signIn")
    answer = client("POST", path, tracked["token"], {"phoneNumber": number(), "smsChannel": "WHATSAPP"})
    assert answer.status == 400
    assert "WhatsApp" in answer.json()["errorDescription"]


def test_client_answers_are_readable_from_the_app_s_origins_and_preflights_pass(stack: Stack) -> None:
    tracked = sdk().track(user_id="user-39", action="signIn")
    answer = client(
        "POST", "/client/user-authenticators/sms", tracked["token"], {"phoneNumber": number()}, Origin=SHOP_ORIGIN
    )
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN

    preflight = invoke("OPTIONS", "/client/verify/sms", Origin=SHOP_ORIGIN, Access_Control_Request_Method="POST")
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert preflight.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"

    refused = invoke(
        "OPTIONS", "/client/verify/sms", Origin="https://evil.example", Access_Control_Request_Method="POST"
    )
    assert refused.status == 403
    assert refused.headers["Content-Type"] == "application/json"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_server_routes_send_no_cors_headers(stack: Stack) -> None:
    answer = server("GET", "/users/user-1", Origin=SHOP_ORIGIN)
    assert not any(name.startswith("Access-Control") for name in answer.headers)


# ------------------------------------------------------------------------------------------------ the facade's pieces


@pytest.mark.parametrize(
    ("key", "camel"),
    [
        ("phone_number", "phoneNumber"),
        ("phoneNumber", "phoneNumber"),
        ("skip_verification_check", "skipVerificationCheck"),
        ("_private", "_private"),
        ("token", "token"),
        ("ip_v4_address", "ipV4Address"),
        ("phone__number", "phone__number"),
        ("phone_Number", "phone_Number"),
        ("Phone_number", "Phone_number"),
        ("phone_number_", "phone_number_"),
        ("phone-number", "phone-number"),
    ],
)
def test_camel_keys(key: str, camel: str) -> None:
    assert facade.camel_keys({key: 1, "custom": {"snake_key": 2}}) == {camel: 1, "custom": {"snake_key": 2}}


def test_null_values_are_dropped_as_the_python_sdk_drops_them() -> None:
    assert facade.camel_keys({"phone_number": None, "action": "x"}) == {"action": "x"}


@pytest.mark.parametrize(
    ("native", "client", "expected"),
    [
        ("INVALID_PHONE_NUMBER", False, "invalid_request"),
        ("UNAUTHORIZED", False, "unauthorized"),
        ("UNAUTHORIZED", True, "expired_token"),
        ("SEND_BUDGET_EXCEEDED", False, "too_many_requests"),
        ("DESTINATION_BLOCKED", False, "destination_blocked"),
        ("INTERNAL_ERROR", False, "internal_error"),
    ],
)
def test_error_codes(native: str, client: bool, expected: str) -> None:
    assert facade.error_code(native, client=client) == expected


def test_a_bug_is_a_500_in_authsignal_s_shape_that_reveals_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(app_id: str = "default") -> Any:
        raise RuntimeError("secret detail +14155552671")

    monkeypatch.setattr(runtime, "authenticator_directory", broken)
    answer = server("GET", "/users/user-1")
    assert answer.status == 500
    assert answer.json()["errorCode"] == "internal_error"
    assert "secret" not in answer.text and "4155552671" not in answer.text
