"""Every endpoint of the Challenges section, JWKS and health, and every error code they can answer."""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.e2e.conftest import Api

pytestmark = pytest.mark.e2e
UNKNOWN = "3f2b8c4e-1d2a-4b7c-9e8f-0a1b2c3d4e5f"


def create(api: Api, phone: str, **fields):
    return api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "signInWithSms", **fields})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def assert_problem(reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == code
    assert reply.body["status"] == status
    assert {"type", "title", "detail"} <= set(reply.body)


def test_sign_in_walkthrough(api, phone):
    created = create(api, phone, userId="user-1")
    assert created.status == 201
    assert created.body["verificationMethod"] == "SMS"
    assert created.body["phoneMask"] == phone[-4:]
    assert created.body["expiresAt"].endswith("Z")
    challenge = created.body["challengeId"]

    verified = api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": api.code(phone)})
    assert verified.status == 200
    assert verified.body["isVerified"] is True
    assert verified.body["token"].count(".") == 2
    assert (verified.body["userId"], verified.body["phoneNumber"], verified.body["action"]) == (
        "user-1",
        phone,
        "signInWithSms",
    )
    assert verified.headers["Cache-Control"] == "no-store"

    claimed = api.call("POST", f"/v1/challenges/{challenge}/claim", {"userId": "user-1"})
    assert claimed.status == 200
    assert claimed.body == {
        "challengeId": challenge,
        "userId": "user-1",
        "phoneNumber": phone,
        "action": "signInWithSms",
    }
    view = api.call("GET", f"/v1/challenges/{challenge}")
    assert view.status == 200
    assert view.body["state"] == "CLAIMED"
    assert set(view.body) == {
        "challengeId",
        "state",
        "action",
        "userId",
        "phoneMask",
        "createdAt",
        "expiresAt",
        "attemptsRemaining",
    }


def test_verify_failures(api, phone):
    challenge = create(api, phone).body["challengeId"]
    code = api.code(phone)
    answers = [api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": wrong(code)}).body for _ in range(5)]
    after = api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": code}).body
    unknown = api.call("POST", f"/v1/challenges/{UNKNOWN}/verify", {"code": code}).body

    assert [a["attemptsRemaining"] for a in answers] == [4, 3, 2, 1, 0]
    assert {a["failureReason"] for a in answers} == {"CODE_INVALID_OR_EXPIRED"}
    assert after == {"isVerified": False, "failureReason": "MAX_ATTEMPTS_EXCEEDED", "attemptsRemaining": 0}
    assert unknown == {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED", "attemptsRemaining": 0}
    assert api.call("GET", f"/v1/challenges/{challenge}").body["state"] == "FAILED"


def test_concurrent_guesses_over_http_never_exceed_max_attempts(api, phone):
    challenge = create(api, phone).body["challengeId"]
    code = api.code(phone)
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(
            pool.map(lambda _: api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": wrong(code)}), range(20))
        )
    assert all(r.status in (200, 429) for r in replies)
    assert sum(1 for r in replies if r.status == 200 and r.body["attemptsRemaining"] >= 0) <= 20
    final = api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": code}).body
    assert final["failureReason"] == "MAX_ATTEMPTS_EXCEEDED"


def test_resend(api, phone):
    challenge = create(api, phone).body["challengeId"]
    early = api.call("POST", f"/v1/challenges/{challenge}/resend")
    assert_problem(early, 429, "RATE_LIMITED")
    assert 1 <= int(early.headers["Retry-After"]) <= 30

    api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": api.code(phone)})
    assert_problem(api.call("POST", f"/v1/challenges/{challenge}/resend"), 409, "CONFLICT")
    assert_problem(api.call("POST", f"/v1/challenges/{UNKNOWN}/resend"), 409, "CONFLICT")


def test_claim_conflicts(api, phone):
    challenge = create(api, phone).body["challengeId"]
    assert_problem(api.call("POST", f"/v1/challenges/{challenge}/claim", {"userId": "u"}), 409, "CONFLICT")
    api.call("POST", f"/v1/challenges/{challenge}/verify", {"code": api.code(phone)})
    assert api.call("POST", f"/v1/challenges/{challenge}/claim", {"userId": "u"}).status == 200
    assert api.call("POST", f"/v1/challenges/{challenge}/claim", {"userId": "u"}).status == 200
    assert_problem(api.call("POST", f"/v1/challenges/{challenge}/claim", {"userId": "v"}), 409, "CONFLICT")


def test_get_unknown_is_404(api):
    assert_problem(api.call("GET", f"/v1/challenges/{UNKNOWN}"), 404, "NOT_FOUND")


def test_send_limit_is_429_with_retry_after(api, phone):
    statuses = [create(api, phone).status for _ in range(5)]
    limited = create(api, phone)
    assert statuses == [201] * 5
    assert_problem(limited, 429, "RATE_LIMITED")
    # Sliding window: at most the window plus the time the five take to decay to four (600 + 120 s).
    assert 1 <= int(limited.headers["Retry-After"]) <= 720
    assert len(api.outbox(phone)) == 5


def test_idempotency_key(api, phone):
    headers = {"Idempotency-Key": f"e2e-{phone}"}
    first = api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "a"}, headers=headers)
    second = api.call("POST", "/v1/challenges", {"phoneNumber": phone, "action": "a"}, headers=headers)
    assert first.status == second.status == 201
    assert first.body == second.body
    assert len(api.outbox(phone)) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"phoneNumber": "+1 650 253 0000", "action": "a"}, "INVALID_PHONE_NUMBER"),
        ({"phoneNumber": "+99912345678", "action": "a"}, "INVALID_PHONE_NUMBER"),
        ({"phoneNumber": "+33612345678", "action": "a"}, "UNSUPPORTED_COUNTRY"),
        ({"phoneNumber": "+18005550199", "action": "a"}, "UNSUPPORTED_NUMBER_TYPE"),
        ({"phoneNumber": "+16502530000", "action": "a", "message": "no code here"}, "INVALID_MESSAGE_TEMPLATE"),
        ({"phoneNumber": "+16502530000", "action": "a", "unknown": 1}, "INVALID_REQUEST"),
        ({"phoneNumber": "+16502530000"}, "INVALID_REQUEST"),
    ],
)
def test_create_validation_errors(api, fields, code):
    assert_problem(api.call("POST", "/v1/challenges", fields), 400, code)


def test_non_json_body_is_400(api):
    assert_problem(api.call("POST", "/v1/challenges", raw=b"{not json"), 400, "INVALID_REQUEST")


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic abc"])
def test_server_endpoints_need_the_api_key(api, auth):
    assert_problem(
        api.call("POST", "/v1/challenges", {"phoneNumber": "+16502530000", "action": "a"}, auth=auth),
        401,
        "UNAUTHORIZED",
    )
    assert_problem(api.call("GET", f"/v1/challenges/{UNKNOWN}", auth=auth), 401, "UNAUTHORIZED")


def test_unknown_route_is_404(api):
    assert_problem(api.call("GET", "/v1/nothing-here"), 404, "NOT_FOUND")


def test_public_endpoints(api):
    jwks = api.call("GET", "/.well-known/jwks.json", auth=None)
    health = api.call("GET", "/v1/health", auth=None)
    assert jwks.status == 200
    key = jwks.body["keys"][0]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key
    assert health.status == 200
    assert health.body["status"] == "ok"


def test_local_outbox_can_be_emptied(api, phone):
    if not api.local:
        pytest.skip("the outbox exists only in the local stack")
    create(api, phone)
    assert api.outbox(phone)
    assert api.call("DELETE", "/_local/outbox", auth=None).status in (200, 204)
    assert api.call("GET", "/_local/outbox", auth=None).body == {"messages": []}
