"""Apps on DynamoDB Local: the store's conditions, key rotation, and two apps side by side sharing nothing.

The handlers run as API Gateway calls them, with the key authorizer's context naming the app (``app=``); the
apps, their keys and settings are made through the operators' use case (otp_core.app_admin), as the admin
routes make them.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest

from otp_core import runtime
from otp_core.adapters.app_store import DynamoAppStore
from otp_core.apps import MAX_KEYS, AppRecord, KeyGrant, key_digest, new_key, new_sid
from otp_core.errors import ConflictError, NotFoundError
from tests.integration.conftest import API_KEY, invoke_function


def _app_id(label: str) -> str:
    # IDs are never reused, and the table lives for the whole session: every test makes its own.
    return f"{label}-{uuid.uuid4().hex[:8]}"


def _store() -> DynamoAppStore:
    return DynamoAppStore(runtime.client("dynamodb"), runtime.settings().table_name)


def _record(app_id: str) -> AppRecord:
    return AppRecord(app_id, "Test", {}, 1_000, new_sid())


def _codes(sms: Any, phone: str, length: int = 6) -> list[str]:
    return [re.findall(rf"\b[0-9]{{{length}}}\b", body)[0] for body in sms(phone)]


# ------------------------------------------------------------------------------------------- the store


def test_an_id_or_an_audience_is_taken_once_even_after_deletion(stack: Any) -> None:
    store = _store()
    first = _app_id("taken")
    record = _record(first)
    store.create(record, f"aud-{first}")
    assert store.app_of_sid(record.sid) == first  # the Twilio Service SID names the app
    with pytest.raises(ConflictError, match="appId"):
        store.create(_record(first), f"aud-other-{first}")
    with pytest.raises(ConflictError, match="tokenAudience"):
        store.create(_record(_app_id("other")), f"aud-{first}")
    store.delete(first, 2_000)
    assert store.get(first).deleted_at == 2_000  # type: ignore[union-attr]
    assert first not in [record.app_id for record in store.list()]
    with pytest.raises(ConflictError, match="appId"):
        store.create(_record(first), f"aud-again-{first}")
    with pytest.raises(NotFoundError):
        store.delete(first, 3_000)


def test_concurrent_key_creations_never_pass_five(stack: Any) -> None:
    store = _store()
    app_id = _app_id("cap")
    store.create(_record(app_id), f"aud-{app_id}")
    barrier, outcomes = threading.Barrier(8), list[object]()

    def add() -> None:
        barrier.wait()
        try:
            outcomes.append(store.add_key(new_key(app_id, None, 1_000).key))
        except ConflictError:
            outcomes.append(False)
        except Exception as exc:  # a lost transaction conflict is a retryable 503, never a sixth key
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) <= MAX_KEYS
    assert len(store.keys(app_id)) == outcomes.count(True) == store.get(app_id).keys  # type: ignore[union-attr]
    while len(store.keys(app_id)) < MAX_KEYS:
        store.add_key(new_key(app_id, None, 1_000).key)
    with pytest.raises(ConflictError):
        store.add_key(new_key(app_id, None, 1_000).key)


def test_a_change_against_a_stale_version_is_refused(stack: Any) -> None:
    store = _store()
    app_id = _app_id("stale")
    store.create(_record(app_id), f"aud-{app_id}")
    read = store.get(app_id)
    assert read is not None
    store.update(read, "One", {"codeLength": 8}, f"aud-{app_id}", f"aud-{app_id}")
    with pytest.raises(ConflictError):
        store.update(read, "Two", {"codeLength": 4}, f"aud-{app_id}", f"aud-{app_id}")
    assert store.get(app_id).settings == {"codeLength": 8}  # type: ignore[union-attr]


def test_keys_rotate_with_no_downtime(stack: Any) -> None:
    # Given an app with one key in use
    admin, keys = runtime.app_admin(), runtime.key_authority()
    app_id = _app_id("rotate")
    admin.create(app_id, "Rotate", None)
    old = admin.create_key(app_id, "old")
    # When a second key is made, both open the app
    new = admin.create_key(app_id, "new")
    assert keys.identify(old.secret) == KeyGrant(app_id, old.key.key_id)
    assert keys.identify(new.secret) == KeyGrant(app_id, new.key.key_id)
    assert {key.description for key in admin.keys(app_id)} == {"old", "new"}
    # And once the old one is revoked (and the lookup cache has moved on), only the new one does
    admin.revoke_key(app_id, old.key.key_id)
    runtime.reset()
    keys = runtime.key_authority()
    assert keys.identify(old.secret) is None
    assert keys.identify(new.secret) == KeyGrant(app_id, new.key.key_id)
    assert _store().grant(key_digest(old.secret)).revoked  # type: ignore[union-attr]
    assert [key.key_id for key in admin.keys(app_id)] == [new.key.key_id]


def test_the_stack_key_is_stored_on_first_use_and_listed(stack: Any) -> None:
    grant = runtime.key_authority().identify(API_KEY)
    assert isinstance(grant, KeyGrant) and grant.app_id == "default"
    listed = runtime.app_admin().keys("default")
    assert grant.key_id in [key.key_id for key in listed]


# ---------------------------------------------------------------------------------- two apps side by side


@pytest.fixture
def two_apps(stack: Any) -> tuple[str, str]:
    admin = runtime.app_admin()
    first, second = _app_id("alpha"), _app_id("beta")
    admin.create(first, "Alpha", {"codeLength": 8, "appName": "Alpha"})
    admin.create(second, "Beta", {"appName": "Beta"})
    return first, second


def _create(app: str, phone: str, **fields: Any) -> Any:
    return invoke_function("create_challenge", body={"phoneNumber": phone, "action": "signIn", **fields}, app=app)


def test_a_challenge_of_one_app_is_unknown_to_the_other(two_apps, sms, phone) -> None:
    alpha, beta = two_apps
    created = _create(alpha, phone, userId="user-1")
    assert created.status == 201, created.body
    challenge_id = created.body["challengeId"]
    code = _codes(sms, phone, 8)[-1]
    assert "Alpha" in sms(phone)[-1]

    # Another app's key sees exactly what an unknown ID gives
    unknown = str(uuid.uuid4())
    for name, body in [("get_challenge", None), ("resend_challenge", None)]:
        foreign = invoke_function(name, body=body, challenge_id=challenge_id, app=beta)
        missing = invoke_function(name, body=body, challenge_id=unknown, app=beta)
        assert (foreign.status, foreign.body["code"]) == (missing.status, missing.body["code"])
    foreign = invoke_function("verify_challenge", body={"code": "123456"}, challenge_id=challenge_id, app=beta)
    assert foreign.body == {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED", "attemptsRemaining": 0}
    foreign = invoke_function("claim_challenge", body={"userId": "user-1"}, challenge_id=challenge_id, app=beta)
    assert foreign.status == 409

    # and the other app's attempts changed nothing: the owner still verifies with all its attempts
    verified = invoke_function("verify_challenge", body={"code": code}, challenge_id=challenge_id, app=alpha)
    assert verified.body["isVerified"] is True
    token = verified.body["token"]

    # The token of one app validates only under that app
    other = invoke_function("validate", body={"token": token}, app=beta)
    assert other.body == {"isValid": False, "failureReason": "TOKEN_INVALID_OR_EXPIRED"}
    other = invoke_function("validate", body={"token": token}, app="default")
    assert other.body["failureReason"] == "TOKEN_INVALID_OR_EXPIRED"
    valid = invoke_function("validate", body={"token": token}, app=alpha)
    assert valid.body["isValid"] is True and valid.body["userId"] == "user-1"


def test_the_same_user_id_in_two_apps_is_two_users(two_apps, phone) -> None:
    alpha, beta = two_apps
    path = {"userId": "user-shared"}
    enrolled = invoke_function(
        "enroll_authenticator",
        body={"verificationMethod": "SMS", "phoneNumber": phone},
        path_parameters=path,
        app=alpha,
    )
    assert enrolled.status == 201
    assert invoke_function("list_authenticators", path_parameters=path, app=beta).body == {"authenticators": []}
    assert len(invoke_function("list_authenticators", path_parameters=path, app=alpha).body["authenticators"]) == 1
    deleted = invoke_function(
        "delete_authenticator",
        path_parameters={**path, "authenticatorId": enrolled.body["authenticatorId"]},
        app=beta,
    )
    assert deleted.status == 404
    # A create naming the user in the other app finds no enrolled number there
    assert _create(beta, phone, userId="user-shared").status == 201
    missing = invoke_function("create_challenge", body={"action": "signIn", "userId": "user-shared"}, app=beta)
    assert missing.status == 400


def test_counters_and_lockouts_are_per_app(two_apps, sms, phone) -> None:
    alpha, beta = two_apps
    # Alpha spends the number's ten-minute cap
    for _ in range(5):
        assert _create(alpha, phone).status == 201
    limited = _create(alpha, phone)
    assert limited.status == 429
    # Beta's sends to the same number are its own
    assert _create(beta, phone).status == 201


def test_client_tokens_act_only_in_their_app(two_apps, sms, phone) -> None:
    alpha, beta = two_apps
    tracked = invoke_function("track", body={"userId": "user-c", "action": "signIn", "attributes": {}}, app=alpha)
    token = tracked.body["token"]
    headers = {"Authorization": f"Bearer {token}"}
    sent = invoke_function("client_enroll", body={"phoneNumber": phone}, headers=headers)
    assert sent.status == 200
    verified = invoke_function("client_verify", body={"code": _codes(sms, phone, 8)[-1]}, headers=headers)
    assert verified.body["isVerified"] is True
    # The user enrolled in alpha; beta knows no such user
    listed = invoke_function("list_authenticators", path_parameters={"userId": "user-c"}, app=beta)
    assert listed.body == {"authenticators": []}
    assert invoke_function("list_authenticators", path_parameters={"userId": "user-c"}, app=alpha).body[
        "authenticators"
    ]
    # The client token's success validates in alpha only
    success = verified.body["token"]
    assert invoke_function("validate", body={"token": success}, app=beta).body["isValid"] is False
    assert invoke_function("validate", body={"token": success}, app=alpha).body["isValid"] is True


def test_a_deleted_app_is_refused_at_once(two_apps, phone) -> None:
    alpha, _ = two_apps
    assert _create(alpha, phone).status == 201
    runtime.app_admin().delete(alpha)
    refused = _create(alpha, phone)
    assert refused.status == 401


# ----------------------------------------------------------------------------------------- test numbers


def test_a_test_number_reaches_no_provider_and_keeps_every_rule(stack, sms, phone) -> None:
    app_id = _app_id("review")
    runtime.app_admin().create(app_id, "Review", {"testNumbers": [{"phoneNumber": phone, "code": "246810"}]})
    created = _create(app_id, phone)
    assert created.status == 201
    assert sms(phone) == []  # no provider saw it
    challenge_id = created.body["challengeId"]
    # A wrong code costs an attempt like any other
    wrong = invoke_function("verify_challenge", body={"code": "111111"}, challenge_id=challenge_id, app=app_id)
    assert wrong.body["attemptsRemaining"] == 4
    right = invoke_function("verify_challenge", body={"code": "246810"}, challenge_id=challenge_id, app=app_id)
    assert right.body["isVerified"] is True and right.body["token"]
    # Single use
    again = invoke_function("verify_challenge", body={"code": "246810"}, challenge_id=challenge_id, app=app_id)
    assert again.body["isVerified"] is False
    # Never an authenticator
    enroll = invoke_function(
        "enroll_authenticator",
        body={"verificationMethod": "SMS", "phoneNumber": phone},
        path_parameters={"userId": "reviewer"},
        app=app_id,
    )
    assert (enroll.status, enroll.body["code"]) == (400, "INVALID_PHONE_NUMBER")
    scoped = _create(app_id, phone, userId="reviewer", scope="add:authenticators")
    assert (scoped.status, scoped.body["code"]) == (400, "INVALID_PHONE_NUMBER")
    # And the per-number cap still holds (one send above, four more, then 429)
    for _ in range(4):
        assert _create(app_id, phone).status == 201
    assert _create(app_id, phone).status == 429
    assert sms(phone) == []


def test_a_test_number_s_fixed_code_cannot_be_brute_forced(stack, phone) -> None:
    app_id = _app_id("brute")
    runtime.app_admin().create(app_id, "Brute", {"testNumbers": [{"phoneNumber": phone, "code": "975310"}]})
    failures = 0
    for _ in range(2):
        challenge_id = _create(app_id, phone).body["challengeId"]
        for guess in range(5):
            reply = invoke_function(
                "verify_challenge", body={"code": f"{guess:06d}"}, challenge_id=challenge_id, app=app_id
            )
            failures += reply.status == 200 and not reply.body["isVerified"]
    # Ten wrong codes in an hour lock the number: the fixed code no longer helps
    locked = _create(app_id, phone)
    assert failures == 10 and locked.status == 429
