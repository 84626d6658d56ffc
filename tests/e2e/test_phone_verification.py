"""Phone verification for signed-in users over HTTP, with access tokens of the local stack's own identity
provider (local/idp.py): send, validate, enrollment of the number, and forged IdP tokens."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.idp import mint_token
from tests.e2e.conftest import Api, Idp, Reply, forge_alg_none, forge_hs256, unverified

pytestmark = pytest.mark.e2e

SEND = "/v1/verification/sms/send"
VALIDATE = "/v1/verification/sms/validate"


def assert_problem(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == code
    assert reply.body["status"] == status


def send(api: Api, token: str | None, phone: str, **fields: Any) -> Reply:
    return api.with_token("POST", SEND, token, {"phoneNumber": phone, **fields})


def validate(api: Api, token: str | None, phone: str, passcode: str) -> Reply:
    return api.with_token("POST", VALIDATE, token, {"phoneNumber": phone, "passcode": passcode})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def masks(api: Api, user: str) -> list[str]:
    reply = api.call("GET", f"/v1/users/{user}/authenticators")
    assert reply.status == 200, reply.body
    return [authenticator["phoneMask"] for authenticator in reply.body["authenticators"]]


# ------------------------------------------------------------------------------------------- the flow


def test_send_validate_and_enroll(api, idp, new_user, phone):
    # Given a signed-in user with an access token from the local IdP's token endpoint
    user = new_user()
    minted = api.call("POST", "/_local/idp/token", {"sub": user}, auth=None)
    assert minted.status == 200, minted.body
    token = minted.body["accessToken"]

    # When a code is sent to a number, a wrong passcode is tried, then the right one
    sent = send(api, token, phone)
    code = api.code(phone)
    bad = validate(api, token, phone, wrong(code))
    good = validate(api, token, phone, code)

    # Then the send is accepted, the wrong code counts down, the right one verifies and enrolls the number
    assert sent.status == 202, sent.body
    assert set(sent.body) == {"phoneMask", "expiresAt", "resendAvailableAt"}
    assert sent.body["phoneMask"] == phone[-4:]
    assert sent.body["expiresAt"].endswith("Z")
    assert sent.body["resendAvailableAt"] < sent.body["expiresAt"]
    assert bad.status == 200
    assert bad.body == {"verified": False, "failureReason": "CODE_INVALID_OR_EXPIRED", "attemptsRemaining": 4}
    assert good.status == 200
    assert good.body == {"verified": True, "enrolled": True}
    assert masks(api, user) == [phone[-4:]]
    listed = api.call("GET", f"/v1/users/{user}/authenticators").body
    assert phone not in json.dumps(listed)
    assert validate(api, token, phone, code).body["verified"] is False  # a code verifies once


def test_custom_message_and_sender_id_reach_the_sms(api, idp, new_user, phone):
    user = new_user()
    token = idp.token(user)

    sent = send(api, token, phone, message="Your {app} code is {otp}. Valid {minutes} min.", senderId="Acme")

    assert sent.status == 202, sent.body
    (message,) = api.messages(phone)
    assert message["senderId"] == "Acme"
    found = re.fullmatch(r"Your (?P<app>.+) code is (?P<code>\d{6})\. Valid (?P<minutes>\d+) min\.", message["body"])
    assert found, message["body"]
    assert "{" not in found.group("app")
    assert found.group("minutes") == "10"
    assert validate(api, token, phone, found.group("code")).body == {"verified": True, "enrolled": True}
    assert masks(api, user) == [phone[-4:]]


def test_validate_never_replaces_an_enrolled_number(api, idp, new_user, new_phone):
    # Given a user with an enrolled number, and an attacker holding only the user's access token
    user, first, second = new_user(), new_phone(), new_phone()
    enrolled = api.call("POST", f"/v1/users/{user}/authenticators", {"verificationMethod": "SMS", "phoneNumber": first})
    token = idp.token(user)

    # When the attacker verifies a number of their own with that token
    send(api, token, second)
    result = validate(api, token, second, api.code(second))

    # Then the number is verified but the second factor stays where it was, with the same ID
    assert result.body == {"verified": True, "enrolled": False}
    listed = api.call("GET", f"/v1/users/{user}/authenticators").body["authenticators"]
    assert [(a["authenticatorId"], a["phoneMask"]) for a in listed] == [(enrolled.body["authenticatorId"], first[-4:])]


def test_end_users_cannot_pick_the_sender_or_write_a_phishing_text(api, idp, new_user, phone):
    token = idp.token(new_user())

    # A sender ID the operator did not allow, a text without {app}, with a URL, an e-mail or a phone number
    sender = send(api, token, phone, senderId="YourBank")
    no_app = send(api, token, phone, message="Your code is {otp}")
    link = send(api, token, phone, message="{app}: {otp}. Log in at evil.example.com")
    mail = send(api, token, phone, message="{app}: {otp}. Questions: help@evil.test")
    number = send(api, token, phone, message="{app}: {otp}. Call +1 415 555 0100")

    assert_problem(sender, 400, "INVALID_REQUEST")
    assert sender.body["errors"][0]["field"] == "senderId"
    for reply in (no_app, link, mail, number):
        assert_problem(reply, 400, "INVALID_MESSAGE_TEMPLATE")
    assert api.outbox(phone) == []


@pytest.mark.parametrize("spelling", ["+116502541234", "+4407911123456", "+1 650 254 1234", "16502541234"])
def test_only_the_canonical_spelling_of_a_number_is_accepted(api, idp, new_user, spelling):
    token = idp.token(new_user())

    assert_problem(send(api, token, spelling), 400, "INVALID_PHONE_NUMBER")
    assert_problem(validate(api, token, spelling, "123456"), 400, "INVALID_PHONE_NUMBER")


def test_a_second_send_inside_the_cooldown_is_429(api, idp, new_user, phone):
    token = idp.token(new_user())
    assert send(api, token, phone).status == 202

    again = send(api, token, phone)

    assert_problem(again, 429, "RATE_LIMITED")
    assert 1 <= int(again.headers["Retry-After"]) <= 30
    assert len(api.outbox(phone)) == 1


def test_max_attempts_then_a_new_send_starts_over(api, idp, new_user, phone):
    # Given a code and every allowed wrong passcode used up
    user = new_user()
    token = idp.token(user)
    send(api, token, phone)
    code = api.code(phone)
    answers = [validate(api, token, phone, wrong(code)).body for _ in range(5)]
    after = validate(api, token, phone, code).body

    # When a new code is sent
    assert send(api, token, phone).status == 202
    fresh = api.code(phone)

    # Then the exhausted one stayed dead and the new one verifies
    assert [a["attemptsRemaining"] for a in answers] == [4, 3, 2, 1, 0]
    assert after == {"verified": False, "failureReason": "MAX_ATTEMPTS_EXCEEDED", "attemptsRemaining": 0}
    assert validate(api, token, phone, fresh).body == {"verified": True, "enrolled": True}


def test_validate_without_a_send(api, idp, new_user, phone):
    reply = validate(api, idp.token(new_user()), phone, "123456")

    assert reply.status == 200
    assert reply.body["verified"] is False
    assert reply.body["failureReason"] == "CODE_INVALID_OR_EXPIRED"


def test_another_user_cannot_validate_the_code(api, idp, new_user, phone):
    # Given user A waiting for a code on a number
    user_a, user_b = new_user(), new_user()
    token_a, token_b = idp.token(user_a), idp.token(user_b)
    send(api, token_a, phone)
    code = api.code(phone)

    # When user B presents A's code for the same number
    stolen = validate(api, token_b, phone, code)

    # Then B gets nothing and A's code still works for A
    assert stolen.body["verified"] is False
    assert masks(api, user_b) == []
    assert validate(api, token_a, phone, code).body == {"verified": True, "enrolled": True}
    assert masks(api, user_a) == [phone[-4:]]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"phoneNumber": "+1 650 253 0000"}, "INVALID_PHONE_NUMBER"),
        ({"phoneNumber": "+33612345678"}, "UNSUPPORTED_COUNTRY"),
        ({"phoneNumber": "+18005550199"}, "UNSUPPORTED_NUMBER_TYPE"),
        ({"phoneNumber": "+16502530001", "message": "no code here"}, "INVALID_MESSAGE_TEMPLATE"),
        ({"phoneNumber": "+16502530001", "message": "{otp} {unknown}"}, "INVALID_MESSAGE_TEMPLATE"),
        ({"phoneNumber": "+16502530001", "message": "{otp}" + "x" * 160}, "INVALID_MESSAGE_TEMPLATE"),
        ({"phoneNumber": "+16502530001", "senderId": "123"}, "INVALID_REQUEST"),
        ({"phoneNumber": "+16502530001", "senderId": "TooLongSender"}, "INVALID_REQUEST"),
        ({"phoneNumber": "+16502530001", "userId": "someone-else"}, "INVALID_REQUEST"),
        ({}, "INVALID_REQUEST"),
    ],
)
def test_send_rejects_bad_input(api, idp, new_user, fields, code):
    reply = api.with_token("POST", SEND, idp.token(new_user()), fields)

    assert_problem(reply, 400, code)
    assert api.outbox(fields.get("phoneNumber", "")) == []


@pytest.mark.parametrize(
    "body",
    [
        {"phoneNumber": "+16502530001"},
        {"phoneNumber": "+16502530001", "passcode": "12a456"},
        {"phoneNumber": "+16502530001", "passcode": 123456},
        {"phoneNumber": "+16502530001", "passcode": "123456", "userId": "someone-else"},
    ],
)
def test_validate_rejects_bad_input(api, idp, new_user, body):
    assert_problem(api.with_token("POST", VALIDATE, idp.token(new_user()), body), 400, "INVALID_REQUEST")


# ------------------------------------------------------------------------------------- token attacks


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _attacks(api: Api, idp: Idp, user: str) -> dict[str, str | None]:
    now = int(time.time())
    header, claims = unverified(idp.token(user))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk_text = json.dumps(idp.jwks["keys"][0]).encode()
    track = api.call("POST", "/v1/track", {"userId": user, "action": "signIn"}).body
    return {
        "wrong issuer": idp.token(user, issuer="http://127.0.0.1:1/_local/idp"),
        "wrong audience": idp.token(user, audience="another-app"),
        "expired": idp.token(user, now=now - 7200, ttl_seconds=3600),
        "not yet valid": idp.token(user, claims={"nbf": now + 600}),
        "no exp": idp.token(user, claims={"exp": None}),
        "no sub": idp.token(user, claims={"sub": None}),
        "empty sub": idp.token(user, claims={"sub": ""}),
        "no iat": idp.token(user, claims={"iat": None}),
        "alg none": forge_alg_none(header, claims),
        "alg none, no signature part": forge_alg_none(header, claims).rstrip("."),
        "HS256 with the public key PEM": forge_hs256(header, claims, _public_pem(idp.private_key)),
        "HS256 with the public JWK": forge_hs256(header, claims, jwk_text),
        "unknown kid": idp.token(user, headers={"kid": "not-a-key-of-this-idp"}),
        "no kid": idp.token(user, headers={"kid": None}),
        "key from another JWKS, same kid": mint_token(
            other_key, sub=user, issuer=idp.issuer, audience=idp.audience, headers={"kid": header["kid"]}
        ),
        "jku header": idp.token(user, headers={"jku": "http://127.0.0.1:1/jwks.json"}),
        "this service's client token": track["token"],
        "the API key": api.api_key,
        "missing token": None,
    }


def test_forged_and_foreign_idp_tokens_are_401(api, idp, new_user, phone):
    # Given a user, and tokens that must not pass as theirs
    user = new_user()
    attacks = _attacks(api, idp, user)

    # When each is used to send and to validate
    sends = {name: send(api, token, phone) for name, token in attacks.items()}
    validates = {name: validate(api, token, phone, "123456") for name, token in attacks.items()}

    # Then every one is refused, nothing is sent and nothing is enrolled, while a good token works
    expected = dict.fromkeys(attacks, (401, "UNAUTHORIZED"))
    assert {name: (r.status, (r.body or {}).get("code")) for name, r in sends.items()} == expected
    assert {name: (r.status, (r.body or {}).get("code")) for name, r in validates.items()} == expected
    assert api.outbox(phone) == []
    assert masks(api, user) == []
    assert send(api, idp.token(user), phone).status == 202


@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer x.y.z"])
def test_malformed_authorization_is_401(api, phone, authorization):
    reply = api.call("POST", SEND, {"phoneNumber": phone}, auth=authorization or None)

    assert_problem(reply, 401, "UNAUTHORIZED")


# ------------------------------------------------------------------------------------- the local IdP


def test_local_idp_endpoints(api, idp):
    jwks = api.call("GET", "/_local/idp/jwks.json", auth=None)
    assert jwks.status == 200
    (key,) = jwks.body["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)

    minted = api.call("POST", "/_local/idp/token", {"sub": "user-123"}, auth=None)
    header, claims = unverified(minted.body["accessToken"])
    assert (header["alg"], header["kid"]) == ("RS256", key["kid"])
    assert claims["iss"] == f"{api.url}/_local/idp"
    assert (claims["sub"], claims["aud"]) == ("user-123", "local-app")
    assert claims["exp"] - claims["iat"] == 3600
    assert minted.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "body", [None, {}, {"sub": ""}, {"sub": 1}, {"sub": "u", "scope": "admin"}, {"sub": "u", "ttl": 0}]
)
def test_local_idp_token_endpoint_rejects_bad_bodies(api, idp, body):
    reply = api.call("POST", "/_local/idp/token", body, auth=None)

    assert_problem(reply, 400, "INVALID_REQUEST")


def test_lockout_applies_to_phone_verification(api, idp, new_user, phone):
    # Given a number that collected the lockout threshold of wrong passcodes (2 codes x 5)
    token = idp.token(new_user())
    for _ in range(2):
        assert send(api, token, phone).status == 202
        code = api.code(phone)
        for _ in range(5):
            validate(api, token, phone, wrong(code))

    # Then sends to it are refused while the lock lasts, for any user
    assert_problem(send(api, token, phone), 429, "RATE_LIMITED")
    assert_problem(send(api, idp.token(new_user()), phone), 429, "RATE_LIMITED")
    assert len(api.outbox(phone)) == 2


@pytest.mark.parametrize("algorithm", ["PS256", "RS512"])
def test_other_rsa_algorithms_with_the_idp_key_are_401(api, idp, new_user, phone, algorithm):
    header = {"kid": unverified(idp.token("x"))[0]["kid"]}
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": idp.audience, "sub": new_user(), "iat": now, "exp": now + 600}
    token = jwt.encode(claims, idp.private_key, algorithm=algorithm, headers=header)

    assert_problem(send(api, token, phone), 401, "UNAUTHORIZED")
    assert api.outbox(phone) == []
