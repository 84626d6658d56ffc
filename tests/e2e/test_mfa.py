"""Adaptive MFA over HTTP: track, the client endpoints with a client token, validate, and the users'
authenticators, including the binding rules (one user's token never reaches another's challenge, a client
never chooses a scope) and forged or expired client tokens."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import (
    Api,
    Reply,
    forge_alg_none,
    forge_hs256,
    stack_signed,
    unverified,
)

pytestmark = pytest.mark.e2e


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture
def e2e_rules(api: Api) -> None:
    """The test relies on conftest.E2E_TRACK_RULES, which only the local e2e stack is started with."""
    if not api.local:
        pytest.skip("needs the e2e track rules of the local stack")


def assert_problem(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == code
    assert reply.body["status"] == status


def track(api: Api, user: str, action: str = "signIn", **attributes: Any) -> Reply:
    body: dict[str, Any] = {"userId": user, "action": action}
    if attributes:
        body["attributes"] = attributes
    reply = api.call("POST", "/v1/track", body)
    assert reply.status == 200, reply.body
    return reply


def client(api: Api, path: str, token: str | None, body: Any = None, **kwargs: Any) -> Reply:
    return api.with_token("POST", f"/v1/client/sms/{path}", token, body, **kwargs)


def validate(api: Api, token: str, action: str | None = None) -> Reply:
    body = {"token": token} if action is None else {"token": token, "action": action}
    reply = api.call("POST", "/v1/validate", body)
    assert reply.status == 200, reply.body
    return reply


def authenticators(api: Api, user: str) -> list[dict[str, Any]]:
    reply = api.call("GET", f"/v1/users/{user}/authenticators")
    assert reply.status == 200, reply.body
    result: list[dict[str, Any]] = reply.body["authenticators"]
    return result


def enroll_on_server(api: Api, user: str, phone: str) -> dict[str, Any]:
    reply = api.call("POST", f"/v1/users/{user}/authenticators", {"verificationMethod": "SMS", "phoneNumber": phone})
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


def enroll_with_client(api: Api, user: str, phone: str, action: str = "signIn") -> str:
    """Track, enroll ``phone`` from the client and verify it; the CHALLENGE_SUCCEEDED client token."""
    token = track(api, user, action).body["token"]
    assert client(api, "enroll", token, {"phoneNumber": phone}).status == 200
    verified = client(api, "verify", token, {"code": api.code(phone)})
    assert verified.body["isVerified"] is True, verified.body
    succeeded: str = verified.body["token"]
    return succeeded


def challenge_with_client(api: Api, token: str, phone: str) -> str:
    """Challenge the enrolled number with a track token and verify; the CHALLENGE_SUCCEEDED client token."""
    assert client(api, "challenge", token).status == 200
    verified = client(api, "verify", token, {"code": api.code(phone)})
    assert verified.body["isVerified"] is True, verified.body
    succeeded: str = verified.body["token"]
    return succeeded


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# --------------------------------------------------------------------------------------------- track


def test_track_allows_a_user_without_an_authenticator(api, new_user):
    # Given a user who never enrolled
    user = new_user()

    # When the action is tracked
    reply = track(api, user, "signIn", ipAddress="203.0.113.7", userAgent="e2e", deviceId="d-1")

    # Then it is allowed, with a client token bound to the user and the action
    assert reply.body["state"] == "ALLOW"
    assert reply.body["isEnrolled"] is False
    assert reply.body["enrolledVerificationMethods"] == []
    header, claims = unverified(reply.body["token"])
    assert (header["alg"], claims["sub"], claims["act"]) == ("ES256", user, "signIn")
    assert reply.headers["Cache-Control"] == "no-store"


def test_track_requires_a_challenge_once_enrolled(api, new_user, phone):
    user = new_user()
    enroll_on_server(api, user, phone)

    reply = track(api, user, "signIn")

    assert reply.body["state"] == "CHALLENGE_REQUIRED"
    assert reply.body["isEnrolled"] is True
    assert reply.body["enrolledVerificationMethods"] == ["SMS"]


def test_risk_rule_blocks_and_a_blocked_token_gets_nothing(api, e2e_rules, new_user, phone):
    # Given an enrolled user and a tracked action with a high risk score
    user = new_user()
    enroll_on_server(api, user, phone)
    blocked = track(api, user, "signIn", custom={"riskScore": 95})
    low = track(api, user, "signIn", custom={"riskScore": 10})

    # Then the rule blocks it, and the blocked attempt's token can neither challenge nor validate
    assert blocked.body["state"] == "BLOCK"
    assert low.body["state"] == "CHALLENGE_REQUIRED"
    token = blocked.body["token"]
    assert_problem(client(api, "challenge", token), 403, "FORBIDDEN")
    assert_problem(client(api, "enroll", token, {"phoneNumber": phone}), 403, "FORBIDDEN")
    assert validate(api, token).body["isValid"] is False
    assert api.outbox(phone) == []


def test_new_device_rule_on_withdraw(api, e2e_rules, new_user, phone):
    # Given an enrolled user and the e2e rules: withdraw is allowed on a known device only
    user = new_user()
    enroll_on_server(api, user, phone)

    # When a withdrawal comes from a device never seen before, it needs a challenge
    first = track(api, user, "withdraw", deviceId="phone-A")
    assert first.body["state"] == "CHALLENGE_REQUIRED"
    challenge_with_client(api, first.body["token"], phone)

    # Then that device is known after the successful challenge, another one is not, and risk still wins
    assert track(api, user, "withdraw", deviceId="phone-A").body["state"] == "ALLOW"
    assert track(api, user, "withdraw", deviceId="phone-B").body["state"] == "CHALLENGE_REQUIRED"
    assert track(api, user, "withdraw", deviceId="phone-A", custom={"riskScore": 91}).body["state"] == "BLOCK"


def test_new_device_rule_does_not_need_an_enrolled_user(api, e2e_rules, new_user):
    user = new_user()

    reply = track(api, user, "withdraw", deviceId="laptop")

    assert reply.body["state"] == "CHALLENGE_REQUIRED"
    assert reply.body["isEnrolled"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"action": "signIn"},
        {"userId": "u", "action": "bad action!"},
        {"userId": "u", "action": "signIn", "attributes": {"unknown": 1}},
        {"userId": "u", "action": "signIn", "scope": "add:authenticators"},
    ],
)
def test_track_rejects_invalid_bodies(api, body):
    assert_problem(api.call("POST", "/v1/track", body), 400, "INVALID_REQUEST")


def test_track_needs_the_api_key(api):
    reply = api.call("POST", "/v1/track", {"userId": "u", "action": "signIn"}, auth=None)
    assert_problem(reply, 401, "UNAUTHORIZED")


# ------------------------------------------------------------------------------ client enrollment


def test_client_enrollment_then_validate_once(api, new_user, phone):
    # Given a user without an authenticator and the token of a tracked sign-in
    user = new_user()
    token = track(api, user, "signIn").body["token"]

    # When the client enrolls a number and verifies the code it received
    sent = client(api, "enroll", token, {"phoneNumber": phone})
    assert sent.status == 200, sent.body
    assert set(sent.body) == {"challengeId", "phoneMask", "expiresAt", "resendAvailableAt"}
    assert sent.body["phoneMask"] == phone[-4:]
    verified = client(api, "verify", token, {"code": api.code(phone)})

    # Then the number is enrolled and the new token proves the challenge for the tracked action, once
    assert verified.status == 200
    assert verified.body["isVerified"] is True
    assert verified.body["attemptsRemaining"] == 0
    succeeded = verified.body["token"]
    assert unverified(succeeded)[1]["state"] == "CHALLENGE_SUCCEEDED"
    first = validate(api, succeeded, "signIn").body
    assert first["isValid"] is True
    assert first["state"] == "CHALLENGE_SUCCEEDED"
    assert (first["userId"], first["action"], first["verificationMethod"]) == (user, "signIn", "SMS")
    assert first["challengeId"] == sent.body["challengeId"]
    assert first["phoneNumber"] == phone
    assert validate(api, succeeded, "signIn").body == {"isValid": False, "failureReason": "TOKEN_ALREADY_USED"}
    listed = authenticators(api, user)
    assert [a["phoneMask"] for a in listed] == [phone[-4:]]
    assert track(api, user, "signIn").body["isEnrolled"] is True


def test_validate_action_mismatch(api, new_user, phone):
    succeeded = enroll_with_client(api, new_user(), phone, action="signIn")

    reply = validate(api, succeeded, "withdraw")

    assert reply.body == {"isValid": False, "failureReason": "ACTION_MISMATCH"}


def test_a_track_token_never_validates_as_succeeded(api, e2e_rules, new_user, phone):
    # Given track tokens in every state the rules can give
    user = new_user()
    allowed = track(api, user, "signIn").body
    enroll_on_server(api, user, phone)
    required = track(api, user, "signIn").body
    blocked = track(api, user, "signIn", custom={"riskScore": 99}).body
    assert [t["state"] for t in (allowed, required, blocked)] == ["ALLOW", "CHALLENGE_REQUIRED", "BLOCK"]

    # Then none of them validates, with or without the action
    for tracked in (allowed, required, blocked):
        for action in (None, "signIn"):
            body = validate(api, tracked["token"], action).body
            assert body["isValid"] is False
            assert body.get("state") != "CHALLENGE_SUCCEEDED"


def test_a_server_verification_token_validates_once(api, new_user, phone):
    user = new_user()
    created = api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn", "userId": user})
    verified = api.call("POST", f"/v1/challenges/{created.body['challengeId']}/verify", {"code": api.code(phone)})
    token = verified.body["token"]

    first = validate(api, token, "signIn").body
    second = validate(api, token, "signIn").body

    assert first["isValid"] is True
    assert (first["state"], first["userId"], first["challengeId"]) == (
        "CHALLENGE_SUCCEEDED",
        user,
        created.body["challengeId"],
    )
    assert second == {"isValid": False, "failureReason": "TOKEN_ALREADY_USED"}


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"])
def test_validate_garbage_is_invalid(api, token):
    assert validate(api, token).body == {"isValid": False, "failureReason": "TOKEN_INVALID_OR_EXPIRED"}


def test_validate_rejects_invalid_bodies(api):
    assert_problem(api.call("POST", "/v1/validate", {"token": "x", "extra": 1}), 400, "INVALID_REQUEST")
    assert_problem(api.call("POST", "/v1/validate", {}), 400, "INVALID_REQUEST")
    assert_problem(api.call("POST", "/v1/validate", {"token": "x"}, auth=None), 401, "UNAUTHORIZED")


def test_concurrent_validates_of_one_token_succeed_once(api, new_user, phone):
    succeeded = enroll_with_client(api, new_user(), phone)

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: validate(api, succeeded, "signIn").body, range(10)))

    assert sum(1 for r in replies if r["isValid"]) == 1
    assert sorted(r.get("failureReason", "") for r in replies) == ["", *["TOKEN_ALREADY_USED"] * 9]


# --------------------------------------------------------------------------------- client challenge


def test_client_challenge_for_an_enrolled_user_with_resend_semantics(api, new_user, phone):
    # Given an enrolled user whose sign-in needs a challenge
    user = new_user()
    enroll_on_server(api, user, phone)
    token = track(api, user, "signIn").body["token"]

    # When the client asks for a code, and at once asks again
    sent = client(api, "challenge", token)
    again = client(api, "challenge", token)

    # Then the code goes to the enrolled number; the second ask, inside the cooldown (a reloaded page), sends
    # nothing and answers the pending challenge; and the code verifies
    assert sent.status == 200, sent.body
    assert sent.body["phoneMask"] == phone[-4:]
    assert again.status == 200, again.body
    assert again.body == sent.body
    assert len(api.outbox(phone)) == 1
    verified = client(api, "verify", token, {"code": api.code(phone)})
    assert verified.body["isVerified"] is True
    claims = unverified(verified.body["token"])[1]
    assert (claims["sub"], claims["act"], claims["state"]) == (user, "signIn", "CHALLENGE_SUCCEEDED")
    assert validate(api, verified.body["token"], "signIn").body["isValid"] is True


def test_client_verify_wrong_codes_count_down(api, new_user, phone):
    user = new_user()
    enroll_on_server(api, user, phone)
    token = track(api, user, "signIn").body["token"]
    client(api, "challenge", token)
    code = api.code(phone)

    answers = [client(api, "verify", token, {"code": wrong(code)}).body for _ in range(5)]
    after = client(api, "verify", token, {"code": code}).body

    assert [a["attemptsRemaining"] for a in answers] == [4, 3, 2, 1, 0]
    assert all(a["isVerified"] is False and "token" not in a for a in answers)
    assert after == {"isVerified": False, "failureReason": "MAX_ATTEMPTS_EXCEEDED", "attemptsRemaining": 0}


def test_client_verify_before_any_challenge(api, new_user):
    token = track(api, new_user(), "signIn").body["token"]

    reply = client(api, "verify", token, {"code": "123456"})

    assert reply.status == 200
    assert reply.body["isVerified"] is False
    assert reply.body["failureReason"] == "CODE_INVALID_OR_EXPIRED"


def test_client_challenge_for_a_user_without_an_authenticator_is_409(api, new_user):
    token = track(api, new_user(), "signIn").body["token"]

    assert_problem(client(api, "challenge", token), 409, "CONFLICT")


def test_client_enroll_while_enrolled_needs_a_succeeded_token(api, new_user, new_phone):
    # Given an enrolled user
    user, first, second = new_user(), new_phone(), new_phone()
    enroll_on_server(api, user, first)
    tracked = track(api, user, "signIn").body["token"]

    # When the client tries to enroll another number with the plain track token, it is refused
    assert_problem(client(api, "enroll", tracked, {"phoneNumber": second}), 403, "FORBIDDEN")
    assert api.outbox(second) == []

    # Then, once the enrolled number proves the user, the token may replace it
    succeeded = challenge_with_client(api, tracked, first)
    assert client(api, "enroll", succeeded, {"phoneNumber": second}).status == 200
    assert client(api, "verify", succeeded, {"code": api.code(second)}).body["isVerified"] is True
    assert [a["phoneMask"] for a in authenticators(api, user)] == [second[-4:]]


def test_client_enroll_checks_the_number(api, new_user):
    token = track(api, new_user(), "signIn").body["token"]

    assert_problem(client(api, "enroll", token, {"phoneNumber": "+1 650 253 0000"}), 400, "INVALID_PHONE_NUMBER")
    assert_problem(client(api, "enroll", token, {"phoneNumber": "+33612345678"}), 400, "UNSUPPORTED_COUNTRY")
    assert_problem(client(api, "enroll", token, {}), 400, "INVALID_REQUEST")


# ------------------------------------------------------------------------------------------ binding


def test_a_token_of_one_user_never_reaches_another_users_challenge(api, new_user, new_phone):
    # Given two tracked users, and B enrolling a number from B's client
    user_a, user_b, phone_b = new_user(), new_user(), new_phone()
    token_a = track(api, user_a, "signIn").body["token"]
    token_b = track(api, user_b, "signIn").body["token"]
    assert client(api, "enroll", token_b, {"phoneNumber": phone_b}).status == 200
    code_b = api.code(phone_b)

    # When A's token is used on verify with B's code (right and wrong), and on challenge
    with_right = client(api, "verify", token_a, {"code": code_b})
    with_wrong = [client(api, "verify", token_a, {"code": wrong(code_b)}) for _ in range(3)]
    challenged = client(api, "challenge", token_a)

    # Then nothing verifies, no SMS goes to B's number, and B's challenge still has every attempt
    assert with_right.body["isVerified"] is False
    assert all(reply.body["isVerified"] is False for reply in with_wrong)
    assert_problem(challenged, 409, "CONFLICT")
    assert len(api.outbox(phone_b)) == 1
    assert authenticators(api, user_a) == []
    assert authenticators(api, user_b) == []
    b_wrong = client(api, "verify", token_b, {"code": wrong(code_b)}).body
    assert b_wrong["attemptsRemaining"] == 4
    b_right = client(api, "verify", token_b, {"code": code_b}).body
    assert b_right["isVerified"] is True
    assert unverified(b_right["token"])[1]["sub"] == user_b
    assert [a["phoneMask"] for a in authenticators(api, user_b)] == [phone_b[-4:]]


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("enroll", {"scope": "add:authenticators"}),
        ("enroll", {"scope": "update:authenticators"}),
        ("enroll", {"userId": "someone-else"}),
        ("enroll", {"action": "signIn"}),
        ("verify", {"userId": "someone-else"}),
        ("verify", {"scope": "add:authenticators"}),
        ("challenge", {"userId": "someone-else"}),
        ("challenge", {"phoneNumber": "+16502530000"}),
    ],
)
def test_client_bodies_cannot_choose_user_or_scope(api, new_user, phone, path, extra):
    # Given an enrolled user's client token
    user = new_user()
    enroll_on_server(api, user, phone)
    token = track(api, user, "signIn").body["token"]
    body = {"enroll": {"phoneNumber": phone}, "verify": {"code": "123456"}, "challenge": {}}[path]

    # When the client sends a field it may not choose
    reply = client(api, path, token, {**body, **extra})

    # Then the request is refused and nothing was sent
    assert_problem(reply, 400, "INVALID_REQUEST")
    assert api.outbox(phone) == []
    assert authenticators(api, user)[0]["phoneMask"] == phone[-4:]


# ------------------------------------------------------------------------------------ client tokens


def _claims_for(api: Api, user: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return unverified(track(api, user, "signIn").body["token"])


@pytest.mark.parametrize("path", ["enroll", "challenge", "verify"])
def test_client_endpoints_need_a_token(api, path):
    body = {"enroll": {"phoneNumber": "+16502530000"}, "challenge": None, "verify": {"code": "123456"}}[path]
    assert_problem(client(api, path, None, body), 401, "UNAUTHORIZED")
    assert_problem(client(api, path, "not-a-jwt", body), 401, "UNAUTHORIZED")
    assert_problem(api.call("POST", f"/v1/client/sms/{path}", body), 401, "UNAUTHORIZED")  # the API key


def test_forged_client_tokens_are_401(api, new_user, phone):
    # Given the claims of a real track token for an enrolled user and the stack's public key
    user = new_user()
    enroll_on_server(api, user, phone)
    header, claims = _claims_for(api, user)
    jwk = api.call("GET", "/.well-known/jwks.json", auth=None).body["keys"][0]
    forgeries = {
        "alg none": forge_alg_none(header, claims),
        "HS256 with the public JWK": forge_hs256(header, claims, json.dumps(jwk).encode()),
        "HS256 with the JWK's x": forge_hs256(header, claims, jwk["x"].encode()),
    }

    # Then every forgery is refused and nothing is sent
    answers = {name: client(api, "challenge", token) for name, token in forgeries.items()}
    validated = {name: validate(api, token).body for name, token in forgeries.items()}
    assert {name: (r.status, r.body["code"]) for name, r in answers.items()} == dict.fromkeys(
        forgeries, (401, "UNAUTHORIZED")
    )
    assert {name: tuple(body.items()) for name, body in validated.items()} == dict.fromkeys(
        forgeries, (("isValid", False), ("failureReason", "TOKEN_INVALID_OR_EXPIRED"))
    )
    assert api.outbox(phone) == []


def test_tampered_client_token_is_401(api, new_user, new_phone):
    # Given A's real token with its payload swapped for B's claims (the signature no longer matches)
    user_a, user_b, phone_b = new_user(), new_user(), new_phone()
    enroll_on_server(api, user_b, phone_b)
    token_a = track(api, user_a, "signIn").body["token"]
    token_b = track(api, user_b, "signIn").body["token"]
    head, _, signature = token_a.split(".")
    spliced = f"{head}.{token_b.split('.')[1]}.{signature}"

    assert_problem(client(api, "challenge", spliced), 401, "UNAUTHORIZED")
    assert api.outbox(phone_b) == []


def test_stack_signed_but_expired_or_foreign_client_tokens_are_401(api, new_user, phone):
    # Given tokens signed with the stack's own key but expired, for another audience, or of another type
    user = new_user()
    enroll_on_server(api, user, phone)
    header, claims = _claims_for(api, user)
    now = int(time.time())
    control = stack_signed(api, header, claims)
    tokens = {
        "expired": stack_signed(api, header, {**claims, "iat": now - 3600, "nbf": now - 3600, "exp": now - 60}),
        "not yet valid": stack_signed(api, header, {**claims, "nbf": now + 600, "exp": now + 1200}),
        "other audience": stack_signed(api, header, {**claims, "aud": "someone-else"}),
        "other issuer": stack_signed(api, header, {**claims, "iss": "urn:evil"}),
        "verification type": stack_signed(api, {**header, "typ": "sms-otp-verification+jwt"}, claims),
        "jku header": stack_signed(api, {**header, "jku": "http://127.0.0.1:1/jwks.json"}, claims),
    }

    # Then each is refused, while the same signing path with the real claims is accepted
    answers = {name: client(api, "challenge", token) for name, token in tokens.items()}
    assert {name: (r.status, r.body["code"]) for name, r in answers.items()} == dict.fromkeys(
        tokens, (401, "UNAUTHORIZED")
    )
    assert api.outbox(phone) == []
    assert client(api, "challenge", control).status == 200


def test_a_server_verification_token_is_no_client_token(api, new_user, phone):
    user = new_user()
    enroll_on_server(api, user, phone)
    created = api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn", "userId": user})
    verified = api.call("POST", f"/v1/challenges/{created.body['challengeId']}/verify", {"code": api.code(phone)})

    reply = client(api, "enroll", verified.body["token"], {"phoneNumber": phone})

    assert_problem(reply, 401, "UNAUTHORIZED")


# ------------------------------------------------------------------------------ server authenticators


def test_server_authenticators_enroll_list_delete(api, new_user, phone):
    # Given a number verified elsewhere
    user = new_user()

    # When it is enrolled for the user
    enrolled = enroll_on_server(api, user, phone)

    # Then enroll and list show it masked, and delete removes it once
    assert set(enrolled) == {"authenticatorId", "verificationMethod", "phoneMask", "verifiedAt", "createdAt"}
    assert (enrolled["verificationMethod"], enrolled["phoneMask"]) == ("SMS", phone[-4:])
    assert enrolled["verifiedAt"].endswith("Z")
    listed = authenticators(api, user)
    assert listed == [enrolled]
    raw = api.call("GET", f"/v1/users/{user}/authenticators")
    assert phone not in json.dumps(raw.body)
    path = f"/v1/users/{user}/authenticators/{enrolled['authenticatorId']}"
    deleted = api.call("DELETE", path)
    assert deleted.status == 204
    assert authenticators(api, user) == []
    assert_problem(api.call("DELETE", path), 404, "NOT_FOUND")
    assert track(api, user, "signIn").body["isEnrolled"] is False


def test_server_enroll_replaces_the_number(api, new_user, new_phone):
    user, first, second = new_user(), new_phone(), new_phone()
    old = enroll_on_server(api, user, first)

    new = enroll_on_server(api, user, second)

    assert [a["phoneMask"] for a in authenticators(api, user)] == [second[-4:]]
    if old["authenticatorId"] != new["authenticatorId"]:
        stale = api.call("DELETE", f"/v1/users/{user}/authenticators/{old['authenticatorId']}")
        assert_problem(stale, 404, "NOT_FOUND")


def test_delete_of_another_users_authenticator_is_404(api, new_user, phone):
    owner, stranger = new_user(), new_user()
    enrolled = enroll_on_server(api, owner, phone)

    reply = api.call("DELETE", f"/v1/users/{stranger}/authenticators/{enrolled['authenticatorId']}")

    assert_problem(reply, 404, "NOT_FOUND")
    assert authenticators(api, owner) == [enrolled]


@pytest.mark.parametrize(
    ("user", "body", "code"),
    [
        ("x" * 129, {"verificationMethod": "SMS", "phoneNumber": "+16502530000"}, "INVALID_REQUEST"),
        ("bad%01user", {"verificationMethod": "SMS", "phoneNumber": "+16502530000"}, "INVALID_REQUEST"),
        ("u", {"verificationMethod": "SMS", "phoneNumber": "+1 650 253 0000"}, "INVALID_PHONE_NUMBER"),
        ("u", {"verificationMethod": "SMS", "phoneNumber": "16502530000"}, "INVALID_PHONE_NUMBER"),
        ("u", {"verificationMethod": "SMS", "phoneNumber": "+33612345678"}, "UNSUPPORTED_COUNTRY"),
        ("u", {"verificationMethod": "EMAIL", "phoneNumber": "+16502530000"}, "INVALID_REQUEST"),
        ("u", {"phoneNumber": "+16502530000"}, "INVALID_REQUEST"),
        ("u", {"verificationMethod": "SMS", "phoneNumber": "+16502530000", "extra": 1}, "INVALID_REQUEST"),
    ],
)
def test_server_enroll_rejects_bad_input(api, user, body, code):
    assert_problem(api.call("POST", f"/v1/users/{user}/authenticators", body), 400, code)


def test_list_with_a_bad_user_id_is_400(api):
    assert_problem(api.call("GET", f"/v1/users/{'x' * 129}/authenticators"), 400, "INVALID_REQUEST")


def test_authenticator_endpoints_need_the_api_key(api):
    body = {"verificationMethod": "SMS", "phoneNumber": "+16502530000"}
    assert_problem(api.call("POST", "/v1/users/u/authenticators", body, auth=None), 401, "UNAUTHORIZED")
    assert_problem(api.call("GET", "/v1/users/u/authenticators", auth=None), 401, "UNAUTHORIZED")
    assert_problem(api.call("DELETE", "/v1/users/u/authenticators/a", auth=None), 401, "UNAUTHORIZED")


# ------------------------------------------------------------------------------- scope on challenges


def test_scope_add_enrolls_on_verify_and_a_second_add_is_409(api, new_user, new_phone):
    # Given a user without an authenticator
    user, first, second = new_user(), new_phone(), new_phone()
    body = {"action": "enrollSms", "userId": user, "scope": "add:authenticators"}

    # When a challenge with scope add:authenticators is created, nothing is enrolled before verify
    created = api.call("POST", "/v1/challenges", {**body, "phoneNumber": first})
    assert created.status == 201, created.body
    assert authenticators(api, user) == []
    verified = api.call("POST", f"/v1/challenges/{created.body['challengeId']}/verify", {"code": api.code(first)})

    # Then verify enrolls the number, and a second add for the user conflicts
    assert verified.body["isVerified"] is True
    assert [a["phoneMask"] for a in authenticators(api, user)] == [first[-4:]]
    assert_problem(api.call("POST", "/v1/challenges", {**body, "phoneNumber": second}), 409, "CONFLICT")
    assert api.outbox(second) == []


def test_scope_update_replaces_on_verify(api, new_user, new_phone):
    user, first, second = new_user(), new_phone(), new_phone()
    enroll_on_server(api, user, first)
    body = {"phoneNumber": second, "action": "updatePhoneNumber", "userId": user, "scope": "update:authenticators"}

    created = api.call("POST", "/v1/challenges", body)
    unchanged = [a["phoneMask"] for a in authenticators(api, user)]
    api.call("POST", f"/v1/challenges/{created.body['challengeId']}/verify", {"code": api.code(second)})

    assert unchanged == [first[-4:]]
    assert [a["phoneMask"] for a in authenticators(api, user)] == [second[-4:]]


def test_verify_without_scope_never_enrolls(api, new_user, phone):
    user = new_user()
    created = api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signIn", "userId": user})

    api.call("POST", f"/v1/challenges/{created.body['challengeId']}/verify", {"code": api.code(phone)})

    assert authenticators(api, user) == []


def test_scope_needs_a_user(api, phone):
    body = {"phoneNumber": phone, "action": "enrollSms", "scope": "add:authenticators"}
    assert_problem(api.call("POST", "/v1/challenges", body), 400, "INVALID_REQUEST")


def test_create_without_number_uses_the_enrolled_one(api, new_user, phone):
    user = new_user()
    enroll_on_server(api, user, phone)

    created = api.call("POST", "/v1/challenges", {"action": "signIn", "userId": user})

    assert created.status == 201, created.body
    assert created.body["phoneMask"] == phone[-4:]
    assert len(api.outbox(phone)) == 1


# ------------------------------------------------------------------------------------ late enrollment


def test_client_enroll_started_before_another_enrollment_cannot_replace_it(api, new_user, new_phone):
    # Given a user who was not enrolled when the client started enrolling number X
    user, x, y = new_user(), new_phone(), new_phone()
    token = track(api, user, "signIn").body["token"]
    assert client(api, "enroll", token, {"phoneNumber": x}).status == 200

    # When the user enrolls Y in the meantime, and only then X's code comes back on the old token
    enroll_on_server(api, user, y)
    late = client(api, "verify", token, {"code": api.code(x)})

    # Then Y stays the user's number: the old token never proved Y, so it may not replace it
    assert late.status == 200, late.body
    assert late.body["isVerified"] is False
    assert [a["phoneMask"] for a in authenticators(api, user)] == [y[-4:]]


def test_scope_add_verified_after_another_enrollment_cannot_replace_it(api, new_user, new_phone):
    # Given two add:authenticators challenges for a user who has no authenticator yet
    user, x, y = new_user(), new_phone(), new_phone()
    body = {"action": "enrollSms", "userId": user, "scope": "add:authenticators"}
    first = api.call("POST", "/v1/challenges", {**body, "phoneNumber": x}).body["challengeId"]
    second = api.call("POST", "/v1/challenges", {**body, "phoneNumber": y}).body["challengeId"]

    # When both verify, Y first
    api.call("POST", f"/v1/challenges/{second}/verify", {"code": api.code(y)})
    late = api.call("POST", f"/v1/challenges/{first}/verify", {"code": api.code(x)})

    # Then the second "add" did not silently replace Y
    assert late.body == {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED", "attemptsRemaining": 0}
    assert [a["phoneMask"] for a in authenticators(api, user)] == [y[-4:]]


def test_a_verified_code_cannot_mint_a_second_succeeded_token(api, new_user, phone):
    user = new_user()
    enroll_on_server(api, user, phone)
    token = track(api, user, "signIn").body["token"]
    client(api, "challenge", token)
    code = api.code(phone)

    first = client(api, "verify", token, {"code": code}).body
    second = client(api, "verify", token, {"code": code}).body

    assert first["isVerified"] is True
    assert second["isVerified"] is False
    assert "token" not in second


def test_an_expired_succeeded_token_does_not_validate(api, new_user, phone):
    succeeded = enroll_with_client(api, new_user(), phone)
    header, claims = unverified(succeeded)
    now = int(time.time())

    expired = stack_signed(api, header, {**claims, "jti": f"{claims['jti']}-x", "exp": now - 60})

    assert validate(api, expired).body == {"isValid": False, "failureReason": "TOKEN_INVALID_OR_EXPIRED"}
    assert validate(api, succeeded).body["isValid"] is True


def test_lockout_applies_to_the_client_endpoints(api, new_user, phone):
    # Given an enrolled user whose number collects the lockout threshold of wrong codes (2 challenges x 5)
    user = new_user()
    enroll_on_server(api, user, phone)
    token = track(api, user, "signIn").body["token"]
    for _ in range(2):
        assert client(api, "challenge", token).status == 200
        code = api.code(phone)
        for _ in range(5):
            client(api, "verify", token, {"code": wrong(code)})

    # When the client asks for another code, from a fresh tracked attempt too
    again = client(api, "challenge", token)
    fresh = client(api, "challenge", track(api, user, "signIn").body["token"])

    # Then the number is locked: no code is sent
    assert_problem(again, 429, "RATE_LIMITED")
    assert_problem(fresh, 429, "RATE_LIMITED")
    assert len(api.outbox(phone)) == 2
