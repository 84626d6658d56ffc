"""Security properties on the real table engine: concurrency, fuzzing, logging hygiene, authorization."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.verify_challenge import app as verify_app
from otp_core import runtime
from tests.integration.conftest import API_KEY, invoke_function


def create(phone: str) -> str:
    reply = invoke_function("create_challenge", body={"phoneNumber": phone, "action": "signInWithSms"})
    assert reply.status == 201, reply.body
    return str(reply.body["challengeId"])


def other(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def test_fifty_concurrent_wrong_guesses_evaluate_at_most_max_attempts(stack, sms, phone, table):
    # Given a challenge and 50 threads each holding a wrong guess
    challenge_id = create(phone)
    code = sms(phone)[-1].split()[0]
    service = verify_app.service()
    barrier = threading.Barrier(50)
    results: list[object] = []

    def guess() -> None:
        barrier.wait()
        try:
            results.append(service.verify(challenge_id, other(code), runtime.policy()).check)
        except Exception as exc:
            results.append(exc)

    # When they all verify at once
    threads = [threading.Thread(target=guess) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then at most five were counted, and the right code afterwards is refused
    item = table.get_item(
        TableName=stack.table, Key={"pk": {"S": f"CHL#{challenge_id}"}, "sk": {"S": "CHL"}}, ConsistentRead=True
    )["Item"]
    assert int(item["attempts"]["N"]) <= 5
    assert len(results) == 50
    assert all(getattr(r, "verified", False) is False for r in results)
    final = invoke_function("verify_challenge", challenge_id=challenge_id, body={"code": code})
    if int(item["attempts"]["N"]) == 5:
        assert final.body["failureReason"] == "MAX_ATTEMPTS_EXCEEDED"
    else:  # fewer counted only if some requests were turned away as too concurrent; never more
        assert final.body["isVerified"] is True


def test_two_concurrent_right_codes_verify_once(stack, sms, phone):
    challenge_id = create(phone)
    code = sms(phone)[-1].split()[0]
    service = verify_app.service()
    barrier = threading.Barrier(8)
    verified: list[bool] = []

    def attempt() -> None:
        barrier.wait()
        try:
            verified.append(service.verify(challenge_id, code, runtime.policy()).check.verified)
        except Exception:
            verified.append(False)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert verified.count(True) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=8,
)
create_bodies = st.fixed_dictionaries(
    {},
    optional={
        "phoneNumber": st.one_of(st.from_regex(r"\+[0-9]{0,16}", fullmatch=True), json_values),
        "action": st.one_of(st.from_regex(r"[A-Za-z0-9_.:-]{0,70}", fullmatch=True), json_values),
        "userId": json_values,
        "scope": st.sampled_from(["add:authenticators", "update:authenticators", "x"]) | json_values,
        "message": st.text(max_size=200) | st.just("{otp} {app} {minutes}"),
        "senderId": st.text(max_size=14),
        "locale": st.text(max_size=12),
        "ipAddress": st.ip_addresses().map(str) | st.text(max_size=20),
    },
) | st.dictionaries(st.text(max_size=10), json_values, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=create_bodies)
def test_create_never_answers_5xx(stack, body):
    reply = invoke_function("create_challenge", body=body)
    assert reply.status < 500 or reply.status == 502, reply.body
    if reply.status >= 400:
        assert reply.body["code"] and reply.body["status"] == reply.status


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.text(max_size=60), json_values.map(json.dumps)), challenge_id=st.text(max_size=50))
def test_verify_never_answers_5xx(stack, raw, challenge_id):
    for name in ("verify_challenge", "claim_challenge"):
        reply = invoke_function(name, raw_body=raw, challenge_id=challenge_id or "x")
        assert reply.status < 500, reply.body
    assert invoke_function("get_challenge", challenge_id=challenge_id or "x").status < 500
    assert invoke_function("resend_challenge", challenge_id=challenge_id or "x").status < 500


def test_no_code_token_or_full_number_is_logged(stack, sms, phone, capsys, caplog):
    # Given a full sign-in, with every failure path on the way
    challenge_id = create(phone)
    code = sms(phone)[-1].split()[0]
    invoke_function("verify_challenge", challenge_id=challenge_id, body={"code": other(code)})
    verified = invoke_function("verify_challenge", challenge_id=challenge_id, body={"code": code})
    invoke_function("create_challenge", body={"phoneNumber": phone, "action": "x", "bogus": code})
    invoke_function("create_challenge", body={"phoneNumber": phone[:-1], "action": "x"})
    invoke_function("claim_challenge", challenge_id=challenge_id, body={"userId": "u"})
    invoke_function("resend_challenge", challenge_id=challenge_id)

    # Then nothing written to stdout, stderr or the logging system holds the secrets
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "challenge verified" in logged
    for secret in (code, verified.body["token"], phone, phone[1:], phone[:-1], API_KEY):
        assert secret not in logged


def test_authorizer_allows_the_key_and_denies_everything_else(stack):
    from functions.authorizer import app as authorizer
    from local.gateway import LambdaContext

    context = LambdaContext(
        function_name="authorizer",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:authorizer",
        aws_request_id="r",
    )
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/POST/v1/challenges"
    allowed = authorizer.lambda_handler(
        {"type": "TOKEN", "authorizationToken": f"Bearer {API_KEY}", "methodArn": arn}, context
    )
    statement = allowed["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/api/*"

    for token in ("", "Bearer", f"Basic {API_KEY}", f"Bearer {API_KEY}x", "Bearer wrong", f"bearer {API_KEY}"):
        with pytest.raises(Exception, match="^Unauthorized$"):
            authorizer.lambda_handler({"type": "TOKEN", "authorizationToken": token, "methodArn": arn}, context)
    runtime.reset()
