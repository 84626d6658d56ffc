"""The security review's findings (issue 7) as the contract states them, over HTTP against the local stack
or a deployed one: canonical numbers, one-shot step-up proofs, replaced numbers, validate reasons, the
owner's allowance, addresses, the one-part rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Api, Reply
from tests.e2e.test_mfa import (
    authenticators,
    challenge_with_client,
    client,
    enroll_on_server,
    track,
    validate,
    wrong,
)

pytestmark = pytest.mark.e2e


def assert_problem(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == code


def create(api: Api, **fields: Any) -> Reply:
    return api.call("POST", "/v1/challenges", {"action": "signInWithSms", **fields})


# -- canonical E.164 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["+116502541234", "+4407911123456", "+5703001234567"])
def test_non_canonical_spellings_are_400_on_every_server_endpoint(api, new_user, spelling):
    user = new_user()

    assert_problem(create(api, phoneNumber=spelling), 400, "INVALID_PHONE_NUMBER")
    enroll = api.call(
        "POST", f"/v1/users/{user}/authenticators", {"verificationMethod": "SMS", "phoneNumber": spelling}
    )
    assert_problem(enroll, 400, "INVALID_PHONE_NUMBER")
    tracked = api.call("POST", "/v1/track", {"userId": user, "action": "a", "attributes": {"phoneNumber": spelling}})
    assert_problem(tracked, 400, "INVALID_PHONE_NUMBER")
    token = track(api, user).body["token"]
    assert_problem(client(api, "enroll", token, {"phoneNumber": spelling}), 400, "INVALID_PHONE_NUMBER")


# -- step-up proofs and replaced numbers --------------------------------------------------------------------


def test_a_step_up_proof_changes_the_number_once_and_never_after_validate(api, new_user, new_phone):
    # Given an enrolled user who proves the current number once
    user, first, second, third = new_user(), new_phone(), new_phone(), new_phone()
    old = enroll_on_server(api, user, first)
    proof = challenge_with_client(api, track(api, user).body["token"], first)

    # When the proof changes the number, then tries again
    assert client(api, "enroll", proof, {"phoneNumber": second}).status == 200
    assert client(api, "verify", proof, {"code": api.code(second)}).body["isVerified"] is True
    again = client(api, "enroll", proof, {"phoneNumber": third})

    # Then the second change is 403 and the replaced number is a new authenticator
    assert_problem(again, 403, "FORBIDDEN")
    listed = authenticators(api, user)
    assert [a["phoneMask"] for a in listed] == [second[-4:]]
    assert listed[0]["authenticatorId"] != old["authenticatorId"]

    # And a proof the server validated changes nothing
    validated = challenge_with_client(api, track(api, user).body["token"], second)
    assert validate(api, validated).body["isValid"] is True
    assert_problem(client(api, "enroll", validated, {"phoneNumber": third}), 403, "FORBIDDEN")
    assert api.outbox(third) == []


def test_deleting_the_authenticator_cancels_a_pending_update(api, new_user, new_phone):
    user, first, second = new_user(), new_phone(), new_phone()
    old = enroll_on_server(api, user, first)
    pending = create(api, phoneNumber=second, userId=user, scope="update:authenticators").body
    deleted = api.call("DELETE", f"/v1/users/{user}/authenticators/{old['authenticatorId']}")
    assert deleted.status == 204

    result = api.call("POST", f"/v1/challenges/{pending['challengeId']}/verify", {"code": api.code(second)})

    assert result.body["isVerified"] is False
    assert authenticators(api, user) == []


# -- validate names a reason -----------------------------------------------------------------------------------


def test_validate_of_a_track_token_says_not_completed(api, new_user):
    tracked = track(api, new_user()).body

    body = validate(api, tracked["token"]).body

    assert body["isValid"] is False
    assert body["failureReason"] == "CHALLENGE_NOT_COMPLETED"
    assert body["state"] == tracked["state"]


# -- the owner's allowance -------------------------------------------------------------------------------------


def test_strangers_filling_the_numbers_caps_do_not_deny_the_owner(api, new_user, phone):
    # Given an enrolled victim, and sends and wrong guesses to the victim's number that do not name the victim
    victim = new_user()
    enroll_on_server(api, victim, phone)
    for _ in range(2):
        stranger = create(api, phoneNumber=phone).body
        for _ in range(5):
            api.call("POST", f"/v1/challenges/{stranger['challengeId']}/verify", {"code": wrong(api.code(phone))})
    assert_problem(create(api, phoneNumber=phone), 429, "RATE_LIMITED")

    # When the victim signs in, then the victim's own challenge is sent and verifies
    token = track(api, victim).body["token"]
    assert client(api, "challenge", token).status == 200
    assert client(api, "verify", token, {"code": api.code(phone)}).body["isVerified"] is True


# -- addresses and numbers in bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["fe80::1%eth0", "198.51.100.7/32", "example.com", "999.1.1.1"])
def test_an_ip_address_that_is_not_an_address_is_400(api, phone, address):
    reply = create(api, phoneNumber=phone, ipAddress=address)

    assert_problem(reply, 400, "INVALID_REQUEST")
    assert reply.body["errors"][0]["field"] == "ipAddress"
    assert api.outbox(phone) == []


def test_a_message_over_one_part_is_refused(api, phone):
    accented = create(api, phoneNumber=phone, message="{otp} " + "é" * 100)  # é is GSM-7: 107 septets, fits
    ucs2 = create(api, phoneNumber=phone, message="{otp} " + "ó" * 70)  # ó is not: 77 UTF-16 units

    assert accented.status == 201, accented.body
    assert_problem(ucs2, 400, "INVALID_MESSAGE_TEMPLATE")
