"""Issue 3's handlers on DynamoDB Local: track, client endpoints, validate, authenticators."""

from __future__ import annotations

import re
import threading

from otp_core import runtime
from tests.integration.conftest import invoke_function


def code_of(sms, phone) -> str:
    return re.findall(r"\b[0-9]{6}\b", sms(phone)[-1])[0]


def track(user: str, action: str = "signIn", **attributes):
    reply = invoke_function("track", body={"userId": user, "action": action, "attributes": attributes})
    assert reply.status == 200, reply.body
    return reply.body


def client(name: str, token: str, body=None, source_ip: str | None = None):
    return invoke_function(name, body=body, headers={"Authorization": f"Bearer {token}"}, source_ip=source_ip)


def test_enroll_from_the_client_then_challenge_and_validate(stack, sms, phone, table):
    user = f"user-{phone[-4:]}"
    first = track(user, deviceId="phone-1")
    assert (first["state"], first["isEnrolled"], first["enrolledVerificationMethods"]) == ("ALLOW", False, [])

    enrolled = client("client_enroll", first["token"], {"phoneNumber": phone})
    assert enrolled.status == 200 and set(enrolled.body) == {
        "challengeId",
        "phoneMask",
        "expiresAt",
        "resendAvailableAt",
    }
    verified = client("client_verify", first["token"], {"code": code_of(sms, phone)})
    assert verified.status == 200 and verified.body["isVerified"] is True

    listed = invoke_function("list_authenticators", body=None, path_parameters={"userId": user})
    assert [a["phoneMask"] for a in listed.body["authenticators"]] == [phone[-4:]]
    assert phone not in str(listed.body)

    second = track(user)
    assert second["state"] == "CHALLENGE_REQUIRED" and second["isEnrolled"]
    sent = client("client_challenge", second["token"])
    assert sent.status == 200
    again = client("client_challenge", second["token"])
    assert again.status == 200 and again.body == sent.body  # a reload inside the cooldown sends nothing
    succeeded = client("client_verify", second["token"], {"code": code_of(sms, phone)}).body["token"]

    valid = invoke_function("validate", body={"token": succeeded, "action": "signIn"})
    replay = invoke_function("validate", body={"token": succeeded, "action": "signIn"})
    assert valid.body["isValid"] is True and valid.body["userId"] == user and valid.body["phoneNumber"] == phone
    assert replay.body == {"isValid": False, "failureReason": "TOKEN_ALREADY_USED"}
    assert invoke_function("validate", body={"token": second["token"]}).body["isValid"] is False


def test_client_endpoints_refuse_missing_and_server_tokens(stack, phone):
    for headers in ({}, {"Authorization": "Bearer nope"}):
        reply = invoke_function("client_enroll", body={"phoneNumber": phone}, headers=headers or {"Authorization": ""})
        assert reply.status == 401 and reply.body["code"] == "UNAUTHORIZED"
    assert client("client_enroll", track("u-1")["token"], {"phoneNumber": phone, "scope": "x"}).status == 400


def test_client_challenge_without_enrollment_is_409(stack):
    assert client("client_challenge", track("nobody-enrolled")["token"]).status == 409


def test_concurrent_validates_on_dynamodb_local(stack, sms, phone):
    created = invoke_function("create_challenge", body={"phoneNumber": phone, "action": "a"})
    token = invoke_function(
        "verify_challenge", challenge_id=created.body["challengeId"], body={"code": code_of(sms, phone)}
    ).body["token"]
    validator = runtime.token_validator()
    barrier, results = threading.Barrier(10), []

    def validate() -> None:
        barrier.wait()
        results.append(validator.validate(token, "a", runtime.policy()).valid)

    threads = [threading.Thread(target=validate) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_server_authenticator_endpoints(stack, phone):
    user = f"api-{phone[-4:]}"
    created = invoke_function(
        "enroll_authenticator",
        body={"verificationMethod": "SMS", "phoneNumber": phone},
        path_parameters={"userId": user},
    )
    assert created.status == 201 and created.body["phoneMask"] == phone[-4:]
    assert set(created.body) == {"authenticatorId", "verificationMethod", "phoneMask", "verifiedAt", "createdAt"}
    bad = invoke_function(
        "enroll_authenticator",
        body={"verificationMethod": "SMS", "phoneNumber": "123"},
        path_parameters={"userId": user},
    )
    assert bad.status == 400 and bad.body["code"] == "INVALID_PHONE_NUMBER"

    params = {"userId": user, "authenticatorId": created.body["authenticatorId"]}
    assert invoke_function("delete_authenticator", path_parameters=params).status == 204
    missing = invoke_function("delete_authenticator", path_parameters=params)
    assert missing.status == 404 and missing.body["code"] == "NOT_FOUND"
    assert invoke_function("list_authenticators", path_parameters={"userId": user}).body == {"authenticators": []}


def test_scope_on_server_challenges_enrolls_and_add_twice_is_409(stack, sms, phone):
    user = f"scope-{phone[-4:]}"
    body = {"phoneNumber": phone, "action": "enrollSms", "userId": user, "scope": "add:authenticators"}
    created = invoke_function("create_challenge", body=body)
    invoke_function("verify_challenge", challenge_id=created.body["challengeId"], body={"code": code_of(sms, phone)})

    assert invoke_function("list_authenticators", path_parameters={"userId": user}).body["authenticators"]
    assert invoke_function("create_challenge", body=body).status == 409
    by_user = invoke_function("create_challenge", body={"action": "signIn", "userId": user})
    assert by_user.status == 201 and by_user.body["phoneMask"] == phone[-4:]


def test_client_sends_are_capped_per_source_ip(stack, policy):
    # Given a one-send-per-hour IP cap, and two users behind the same address
    policy(max_sends_per_ip_per_hour=1)
    ip = "203.0.113.201"
    first = client("client_enroll", track("ip-user-1")["token"], {"phoneNumber": "+16502539001"}, ip)
    second = client("client_enroll", track("ip-user-2")["token"], {"phoneNumber": "+16502539002"}, ip)

    assert first.status == 200
    assert second.status == 429
    assert "Retry-After" in second.headers
