"""``DELETE /_local/counters`` of the local stack (``local.services.reset_counters``) against DynamoDB Local."""

from __future__ import annotations

from collections.abc import Callable

from local.services import reset_counters
from tests.integration.conftest import Reply, Stack


def test_reset_lifts_the_send_cap_and_keeps_the_challenges(
    invoke: Callable[..., Reply], phone: str, stack: Stack
) -> None:
    # Given a number that ran into its 10-minute send cap
    body = {"phoneNumber": phone, "action": "signInWithSms"}
    sent = [invoke("create_challenge", body=body) for _ in range(6)]
    assert [reply.status for reply in sent] == [201] * 5 + [429]

    # When the local stack forgets its counters
    deleted = reset_counters(stack.environment["AWS_ENDPOINT_URL_DYNAMODB"], stack.table)

    # Then the number gets a code again, and the earlier challenges are still there
    assert deleted >= 2  # at least the number's 10-minute and daily windows
    assert invoke("create_challenge", body=body).status == 201
    first = sent[0].body["challengeId"]
    assert invoke("get_challenge", challenge_id=first).status == 200
    assert reset_counters(stack.environment["AWS_ENDPOINT_URL_DYNAMODB"], stack.table) >= 1


def test_reset_keeps_an_app_s_user_whose_id_reads_like_a_counter(invoke: Callable[..., Reply], phone: str, stack):
    # Given a user of another app whose ID holds "#CNT#" (a user ID is free text)
    from otp_core import runtime

    app_id = f"counters-{phone[-4:]}"
    runtime.app_admin().create(app_id, "Counters", None)
    path = {"userId": "victim%23CNT%231"}  # victim#CNT#1, as API Gateway passes it
    body = {"verificationMethod": "SMS", "phoneNumber": phone}
    assert invoke("enroll_authenticator", body=body, path_parameters=path, app=app_id).status == 201

    # When the local stack forgets its counters
    reset_counters(stack.environment["AWS_ENDPOINT_URL_DYNAMODB"], stack.table)

    # Then the user's authenticator is still there
    listed = invoke("list_authenticators", path_parameters=path, app=app_id)
    assert len(listed.body["authenticators"]) == 1
