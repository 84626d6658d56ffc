"""Every challenge endpoint through its handler, on DynamoDB Local and moto."""

from __future__ import annotations

import jwt
import pytest

from otp_core.token_verify import TokenVerifier
from otp_core.tokens import VERIFICATION_TOKEN_TYPE


def create(invoke, phone, **fields):
    return invoke("create_challenge", body={"phoneNumber": phone, "action": "signInWithSms", **fields})


def code_of(sms, phone) -> str:
    return sms(phone)[-1].split()[0]


def other(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def test_sign_in_flow_end_to_end(invoke, sms, phone, stack):
    # Given a challenge sent by SMS
    created = create(invoke, phone, userId="user-42")
    assert created.status == 201
    assert set(created.body) == {
        "challengeId",
        "verificationMethod",
        "phoneMask",
        "expiresAt",
        "resendAvailableAt",
        "attemptsRemaining",
    }
    assert created.body["phoneMask"] == phone[-4:]
    assert created.headers["Content-Type"] == "application/json"
    challenge_id = created.body["challengeId"]

    # When the right code is submitted
    verified = invoke("verify_challenge", challenge_id=challenge_id, body={"code": code_of(sms, phone)})

    # Then the answer carries a token that verifies against the published JWKS
    assert verified.status == 200
    assert verified.body["isVerified"] is True
    assert verified.body["userId"] == "user-42"
    assert verified.body["phoneNumber"] == phone
    jwks = invoke("jwks")
    assert jwks.status == 200 and jwks.headers["Cache-Control"].startswith("public")
    env = stack.environment
    claims = TokenVerifier(
        jwks.body, issuer=env["TOKEN_ISSUER"], app_id="default", audience=env["TOKEN_AUDIENCE"]
    ).verify(verified.body["token"], token_type=VERIFICATION_TOKEN_TYPE)
    assert claims["phone_number"] == phone and claims["chl"] == challenge_id
    assert jwt.get_unverified_header(verified.body["token"])["kid"] == jwks.body["keys"][0]["kid"]

    # And the challenge is VERIFIED, then CLAIMED
    assert invoke("get_challenge", challenge_id=challenge_id).body["state"] == "VERIFIED"
    claimed = invoke("claim_challenge", challenge_id=challenge_id, body={"userId": "user-42"})
    assert claimed.status == 200
    assert claimed.body == {
        "challengeId": challenge_id,
        "userId": "user-42",
        "phoneNumber": phone,
        "action": "signInWithSms",
    }
    assert invoke("claim_challenge", challenge_id=challenge_id, body={"userId": "user-42"}).status == 200
    assert invoke("claim_challenge", challenge_id=challenge_id, body={"userId": "someone"}).status == 409
    view = invoke("get_challenge", challenge_id=challenge_id).body
    assert view["state"] == "CLAIMED" and view["userId"] == "user-42" and view["attemptsRemaining"] == 0


def test_sms_goes_out_transactional_with_sender_id(invoke, phone, stack):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    created = create(invoke, phone, senderId="Acme", message="{app} code: {otp}")

    assert created.status == 201
    backend = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    to, body, *_ = list(backend.sms_messages.values())[-1]
    assert to == phone
    assert body.startswith(f"{stack.environment['APP_NAME']} code: ")


def test_the_table_never_holds_the_code(invoke, sms, phone, table, stack):
    challenge_id = create(invoke, phone).body["challengeId"]
    code = code_of(sms, phone)

    item = table.get_item(TableName=stack.table, Key={"pk": {"S": f"CHL#{challenge_id}"}, "sk": {"S": "CHL"}})["Item"]

    values = [next(iter(value.values())) for value in item.values()]
    assert all(code not in str(value) for value in values)
    assert int(item["ttl"]["N"]) > int(item["expiresAt"]["N"])


def test_wrong_code_counts_down_then_max_attempts(invoke, sms, phone):
    challenge_id = create(invoke, phone).body["challengeId"]
    code = code_of(sms, phone)

    answers = [invoke("verify_challenge", challenge_id=challenge_id, body={"code": other(code)}).body for _ in range(5)]
    final = invoke("verify_challenge", challenge_id=challenge_id, body={"code": code}).body

    assert [a["attemptsRemaining"] for a in answers] == [4, 3, 2, 1, 0]
    assert all(
        a
        == {
            "isVerified": False,
            "failureReason": "CODE_INVALID_OR_EXPIRED",
            "attemptsRemaining": a["attemptsRemaining"],
        }
        for a in answers
    )
    assert final == {"isVerified": False, "failureReason": "MAX_ATTEMPTS_EXCEEDED", "attemptsRemaining": 0}
    assert invoke("get_challenge", challenge_id=challenge_id).body["state"] == "FAILED"


def test_code_reuse_fails(invoke, sms, phone):
    challenge_id = create(invoke, phone).body["challengeId"]
    code = code_of(sms, phone)
    assert invoke("verify_challenge", challenge_id=challenge_id, body={"code": code}).body["isVerified"]
    again = invoke("verify_challenge", challenge_id=challenge_id, body={"code": code}).body
    assert again == {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED", "attemptsRemaining": 0}


def test_unknown_challenge_is_indistinguishable(invoke):
    unknown = "3f2b8c4e-1d2a-4b7c-9e8f-0a1b2c3d4e5f"
    assert invoke("verify_challenge", challenge_id=unknown, body={"code": "123456"}).body == {
        "isVerified": False,
        "failureReason": "CODE_INVALID_OR_EXPIRED",
        "attemptsRemaining": 0,
    }
    assert invoke("get_challenge", challenge_id=unknown).status == 404
    assert invoke("get_challenge", challenge_id="../../etc").status == 404
    assert invoke("resend_challenge", challenge_id=unknown).status == 409
    assert invoke("claim_challenge", challenge_id=unknown, body={"userId": "u"}).status == 409


def test_resend_same_code_cooldown_and_conflict(invoke, sms, phone, policy):
    policy(resend_cooldown_seconds=0)
    challenge_id = create(invoke, phone).body["challengeId"]

    resent = invoke("resend_challenge", challenge_id=challenge_id)
    assert resent.status == 200
    assert sms(phone)[0] == sms(phone)[1]
    # The second resend waits 0 * 2 seconds; with the default policy it would wait 60.
    assert invoke("resend_challenge", challenge_id=challenge_id).status == 200

    invoke("verify_challenge", challenge_id=challenge_id, body={"code": code_of(sms, phone)})
    finished = invoke("resend_challenge", challenge_id=challenge_id)
    assert finished.status == 409 and finished.body["code"] == "CONFLICT"


def test_resend_inside_the_cooldown_is_429_with_retry_after(invoke, phone):
    challenge_id = create(invoke, phone).body["challengeId"]
    limited = invoke("resend_challenge", challenge_id=challenge_id)
    assert limited.status == 429
    assert limited.body["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 30


def test_send_cap_per_number(invoke, phone, sms):
    statuses = [create(invoke, phone).status for _ in range(6)]
    assert statuses == [201] * 5 + [429]
    assert len(sms(phone)) == 5


def test_per_ip_cap(invoke, phone, policy):
    policy(max_sends_per_ip_per_hour=1)
    ip = "203.0.113.99"
    assert create(invoke, phone, ipAddress=ip).status == 201
    second = create(invoke, "+16502530001" if phone != "+16502530001" else "+16502530002", ipAddress=ip)
    assert second.status == 429 and "Retry-After" in second.headers


def test_lockout_after_repeated_failures(invoke, sms, phone, policy):
    policy(max_sends_per_10_minutes=10, lockout_threshold=4, max_attempts=2)
    first = create(invoke, phone).body["challengeId"]
    second = create(invoke, phone).body["challengeId"]
    code = code_of(sms, phone)
    for challenge_id in (first, first, second, second):
        invoke("verify_challenge", challenge_id=challenge_id, body={"code": other(code)})

    blocked_send = create(invoke, phone)
    third = None
    assert blocked_send.status == 429
    assert 890 <= int(blocked_send.headers["Retry-After"]) <= 900
    assert len(sms(phone)) == 2
    del third


def test_lockout_blocks_verify_even_with_the_right_code(invoke, sms, phone, policy):
    policy(lockout_threshold=2, max_attempts=5)
    challenge_id = create(invoke, phone).body["challengeId"]
    code = code_of(sms, phone)
    for _ in range(2):
        invoke("verify_challenge", challenge_id=challenge_id, body={"code": other(code)})

    locked = invoke("verify_challenge", challenge_id=challenge_id, body={"code": code})

    assert locked.status == 429 and locked.body["code"] == "RATE_LIMITED"
    assert invoke("get_challenge", challenge_id=challenge_id).body["attemptsRemaining"] == 3


def test_idempotency_key_replays_the_first_answer_and_sends_once(invoke, sms, phone):
    headers = {"Idempotency-Key": f"order-{phone}"}
    body = {"phoneNumber": phone, "action": "signInWithSms"}

    first = invoke("create_challenge", body=body, headers=headers)
    second = invoke("create_challenge", body=body, headers=headers)
    different = invoke("create_challenge", body={**body, "action": "other"}, headers=headers)

    assert first.status == second.status == 201
    assert first.body == second.body
    assert len(sms(phone)) == 1
    assert different.status == 400 and different.body["code"] == "INVALID_REQUEST"


def test_health(invoke):
    reply = invoke("health")
    assert reply.status == 200 and reply.body["status"] == "ok"


@pytest.mark.parametrize(
    ("name", "fields", "code"),
    [
        ("create_challenge", {"phoneNumber": "+1 650 253 0000", "action": "a"}, "INVALID_PHONE_NUMBER"),
        ("create_challenge", {"phoneNumber": "+16502530000"}, "INVALID_REQUEST"),
        ("create_challenge", {"phoneNumber": "+16502530000", "action": "a", "extra": 1}, "INVALID_REQUEST"),
        ("create_challenge", {"phoneNumber": 16502530000, "action": "a"}, "INVALID_REQUEST"),
        ("create_challenge", {"phoneNumber": "+16502530000", "action": "a b"}, "INVALID_REQUEST"),
        (
            "create_challenge",
            {"phoneNumber": "+16502530000", "action": "a", "scope": "add:authenticators"},
            "INVALID_REQUEST",
        ),
        ("create_challenge", {"phoneNumber": "+16502530000", "action": "a", "senderId": "123"}, "INVALID_REQUEST"),
        (
            "create_challenge",
            {"phoneNumber": "+16502530000", "action": "a", "message": "hi"},
            "INVALID_MESSAGE_TEMPLATE",
        ),
        (
            "create_challenge",
            {"phoneNumber": "+16502530000", "action": "a", "ipAddress": "300.1.1.1"},
            "INVALID_REQUEST",
        ),
        ("create_challenge", {"phoneNumber": "+18005550199", "action": "a"}, "UNSUPPORTED_NUMBER_TYPE"),
        ("create_challenge", {"phoneNumber": "+99912345678", "action": "a"}, "INVALID_PHONE_NUMBER"),
    ],
)
def test_bad_input_is_a_400_problem(invoke, sms, name, fields, code):
    before = len(sms("+16502530000"))
    reply = invoke(name, body=fields)
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.body["code"] == code
    assert reply.body["type"] == "about:blank" and reply.body["status"] == 400
    assert len(sms("+16502530000")) == before


def test_unsupported_country(invoke, policy):
    policy(blocked_countries="US")
    reply = invoke("create_challenge", body={"phoneNumber": "+16502530000", "action": "a"})
    assert reply.status == 400 and reply.body["code"] == "UNSUPPORTED_COUNTRY"


@pytest.mark.parametrize(
    "raw", ["", "not json", "[]", "null", '{"code": 123456}', '{"code": "12345a"}', '{"code": "1234"}']
)
def test_verify_rejects_malformed_bodies(invoke, raw):
    reply = invoke("verify_challenge", challenge_id="3f2b8c4e-1d2a-4b7c-9e8f-0a1b2c3d4e5f", raw_body=raw)
    assert reply.status == 400 and reply.body["code"] == "INVALID_REQUEST"


def test_validation_errors_name_the_fields(invoke):
    reply = invoke("create_challenge", body={"phoneNumber": "+16502530000", "bogus": True})
    fields = {error["field"] for error in reply.body["errors"]}
    assert fields == {"action", "bogus"}


def test_deeply_nested_json_is_a_400(invoke):
    reply = invoke("create_challenge", raw_body="[" * 100_000)
    assert reply.status == 400
    assert reply.body["code"] == "INVALID_REQUEST"
