"""Adaptive MFA, authenticators and signed-in phone verification over in-memory fakes."""

from __future__ import annotations

import threading

import pytest

from otp_core.errors import ConflictError, ForbiddenError, NotFoundError, RateLimitedError, UnauthorizedError
from otp_core.models import CreateChallengeRequest, TrackRequest
from otp_core.rules import load_rules
from tests.unit.conftest import Authenticators, Client, PhoneVerification

PHONE, OTHER = "+14155552671", "+14155552672"


class Mfa:
    """The MFA side of a World: client flows, authenticators and signed-in verification, as handlers call them."""

    def __init__(self, world) -> None:
        self.world = world
        self.identities = world.identities
        self.service = Client(world)
        self.authenticators = Authenticators(world)
        self.phone = PhoneVerification(world)

    def track(self, user="user-1", action="signIn", **attributes):
        result = self.service.track(
            TrackRequest.model_validate({"userId": user, "action": action, "attributes": attributes})
        )
        return result, self.service.authenticate(f"Bearer {result.token}")

    def code(self) -> str:
        return self.world.sender.last_code()


@pytest.fixture
def mfa(world) -> Mfa:
    return Mfa(world)


def test_unenrolled_user_is_allowed_and_can_enroll_from_the_client(mfa):
    result, claims = mfa.track(deviceId="phone-1")
    assert (result.state, result.is_enrolled, result.enrolled_verification_methods) == ("ALLOW", False, [])

    sent = mfa.service.client_enroll(claims, PHONE)
    verified = mfa.service.client_verify(claims, mfa.code())

    assert sent.phone_mask == "2671"
    assert verified.is_verified
    assert mfa.identities.get_authenticator("user-1").phone_number == PHONE
    succeeded = mfa.service.authenticate(f"Bearer {verified.token}")
    assert succeeded["state"] == "CHALLENGE_SUCCEEDED" and succeeded["trk"] == claims["trk"]
    assert mfa.identities.get_attempt(claims["trk"]).state == "CHALLENGE_SUCCEEDED"


def test_enrolled_user_is_challenged_and_validates_once(mfa):
    mfa.authenticators.enroll("user-1", PHONE)
    result, claims = mfa.track()
    assert result.state == "CHALLENGE_REQUIRED" and result.is_enrolled

    assert mfa.service.validate(result.token, "signIn").is_valid is False
    mfa.service.client_challenge(claims)
    token = mfa.service.client_verify(claims, mfa.code()).token

    first = mfa.service.validate(token, "signIn")
    mismatch = mfa.service.validate(token, "transfer")
    again = mfa.service.validate(token, None)

    assert first.is_valid and first.user_id == "user-1" and first.phone_number == PHONE
    assert first.verification_method == "SMS" and first.challenge_id
    assert mismatch.failure_reason == "ACTION_MISMATCH"
    assert again.failure_reason == "TOKEN_ALREADY_USED"
    assert mfa.service.validate("garbage", None).failure_reason == "TOKEN_INVALID_OR_EXPIRED"


def test_concurrent_validates_give_exactly_one_success(mfa, world):
    challenge = world.service.create(CreateChallengeRequest.model_validate({"phoneNumber": PHONE, "action": "a"}))
    token = world.service.verify(challenge.challenge_id, mfa.code()).token
    barrier, results = threading.Barrier(10), []

    def validate() -> None:
        barrier.wait()
        results.append(mfa.service.validate(token, "a").is_valid)

    threads = [threading.Thread(target=validate) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_client_challenge_resends_within_the_attempt_and_409_when_not_enrolled(mfa, world):
    _, stranger = mfa.track(user="user-2")
    with pytest.raises(ConflictError):
        mfa.service.client_challenge(stranger)

    mfa.authenticators.enroll("user-1", PHONE)
    _, claims = mfa.track()
    first = mfa.service.client_challenge(claims)
    # A reload inside the cooldown sends nothing and answers the pending challenge (contract).
    reloaded = mfa.service.client_challenge(claims)
    assert reloaded == first and len(world.sender.sent) == 1
    world.clock.advance(30)
    second = mfa.service.client_challenge(claims)

    assert first.challenge_id == second.challenge_id
    assert world.sender.sent[0].body == world.sender.sent[1].body


def test_enrolled_user_needs_a_succeeded_token_to_add_a_number(mfa):
    mfa.authenticators.enroll("user-1", PHONE)
    _, claims = mfa.track()
    with pytest.raises(ForbiddenError):
        mfa.service.client_enroll(claims, OTHER)

    mfa.service.client_challenge(claims)
    succeeded = mfa.service.authenticate(f"Bearer {mfa.service.client_verify(claims, mfa.code()).token}")
    mfa.service.client_enroll(succeeded, OTHER)
    assert mfa.service.client_verify(succeeded, mfa.code()).is_verified
    assert mfa.identities.get_authenticator("user-1").phone_number == OTHER


def test_a_token_never_acts_on_another_users_challenge(mfa):
    _, alice = mfa.track(user="alice")
    _, bob = mfa.track(user="bob")
    mfa.service.client_enroll(bob, PHONE)
    bob_code = mfa.code()

    forged = {**alice, "trk": bob["trk"]}
    with pytest.raises(UnauthorizedError):
        mfa.service.client_verify(forged, bob_code)
    assert mfa.service.client_verify(alice, bob_code).is_verified is False
    assert mfa.identities.get_authenticator("alice") is None
    assert mfa.service.client_verify(bob, bob_code).is_verified


def test_block_and_new_device_rules(world):
    mfa = Mfa(world)
    mfa.service._rules = load_rules(
        '{"actions": {"withdraw": {"default": "ALLOW", "rules": ['
        '{"outcome": "BLOCK", "when": [{"attribute": "custom.riskScore", "op": "gt", "value": 90}]},'
        '{"outcome": "CHALLENGE_REQUIRED", "when": [{"attribute": "deviceId", "op": "newDevice"}]}]}}}'
    )
    blocked, blocked_claims = mfa.track(action="withdraw", custom={"riskScore": 99})
    new_device, claims = mfa.track(action="withdraw", deviceId="laptop")
    mfa.service.client_enroll(claims, PHONE)
    mfa.service.client_verify(claims, mfa.code())
    known_device, _ = mfa.track(action="withdraw", deviceId="laptop")

    assert blocked.state == "BLOCK"
    with pytest.raises(ForbiddenError):
        mfa.service.client_enroll(blocked_claims, PHONE)
    assert new_device.state == "CHALLENGE_REQUIRED"
    assert known_device.state == "ALLOW"


def test_authenticators_are_masked_replaced_and_deleted(mfa):
    first = mfa.authenticators.enroll("user-1", PHONE)
    again = mfa.authenticators.enroll("user-1", PHONE)
    second = mfa.authenticators.enroll("user-1", OTHER)
    listed = mfa.authenticators.list("user-1")

    # The same number keeps its authenticator; a replaced number is always a new one.
    assert again.authenticator_id == first.authenticator_id
    assert second.authenticator_id != first.authenticator_id
    assert [a.phone_mask for a in listed.authenticators] == ["2672"]
    assert PHONE not in listed.model_dump_json() and OTHER not in listed.model_dump_json()
    with pytest.raises(NotFoundError):
        mfa.authenticators.delete("user-1", first.authenticator_id)
    mfa.authenticators.delete("user-1", second.authenticator_id)
    assert mfa.authenticators.list("user-1").authenticators == []


def test_create_uses_the_enrolled_number_and_add_scope_is_once(mfa, world):
    mfa.authenticators.enroll("user-1", PHONE)
    sent = world.service.create(CreateChallengeRequest.model_validate({"userId": "user-1", "action": "signIn"}))
    assert sent.phone_mask == "2671"
    with pytest.raises(ConflictError):
        world.service.create(
            CreateChallengeRequest.model_validate(
                {"userId": "user-1", "action": "a", "phoneNumber": OTHER, "scope": "add:authenticators"}
            )
        )
    update = world.service.create(
        CreateChallengeRequest.model_validate(
            {"userId": "user-1", "action": "a", "phoneNumber": OTHER, "scope": "update:authenticators"}
        )
    )
    world.service.verify(update.challenge_id, mfa.code())
    assert mfa.identities.get_authenticator("user-1").phone_number == OTHER


def test_verify_without_scope_never_changes_authenticators(mfa, world):
    sent = world.service.create(
        CreateChallengeRequest.model_validate({"userId": "user-1", "action": "a", "phoneNumber": PHONE})
    )
    assert world.service.verify(sent.challenge_id, mfa.code()).is_verified
    assert mfa.identities.get_authenticator("user-1") is None


def test_signed_in_phone_verification(make_world):
    world = make_world(end_user_sender_ids=("ACME",))
    mfa = Mfa(world)
    sent = mfa.phone.send("sub-1", PHONE, "Your {app} code is {otp}", "ACME")
    code = mfa.code()
    wrong = mfa.phone.validate("sub-1", PHONE, f"{(int(code) + 1) % 10**6:06d}")
    stranger = mfa.phone.validate("sub-2", PHONE, code)
    right = mfa.phone.validate("sub-1", PHONE, code)

    assert sent.phone_mask == "2671"
    assert world.sender.sent[-1].body == f"Your SMS OTP code is {code}" and world.sender.sent[-1].sender_id == "ACME"
    assert (wrong.verified, wrong.failure_reason, wrong.attempts_remaining) == (False, "CODE_INVALID_OR_EXPIRED", 4)
    assert stranger.verified is False
    assert right.verified is True and right.enrolled is True
    assert mfa.identities.get_authenticator("sub-1").phone_number == PHONE
    assert mfa.phone.validate("sub-1", PHONE, code).verified is False


def test_signed_in_send_again_is_a_resend_with_cooldown(mfa, world):
    mfa.phone.send("sub-1", PHONE, None, None)
    with pytest.raises(RateLimitedError):
        mfa.phone.send("sub-1", PHONE, None, None)
    world.clock.advance(30)
    mfa.phone.send("sub-1", PHONE, None, None)
    assert world.sender.sent[0].body == world.sender.sent[1].body


def test_one_end_user_cannot_spread_sends_over_many_numbers(mfa, world):
    # Given one client token of a user who is not enrolled
    _, claims = mfa.track(user="pumper")

    # When the client asks for codes to ever new numbers
    statuses = []
    for suffix in range(12):
        try:
            mfa.service.client_enroll(claims, f"+1415555{2600 + suffix:04d}")
            statuses.append("sent")
        except RateLimitedError:
            statuses.append("limited")

    # Then the user's daily cap stops it, whatever the numbers
    assert statuses == ["sent"] * 10 + ["limited"] * 2


def test_an_add_that_lost_to_another_enrollment_is_not_verified(mfa, world):
    sent = world.service.create(
        CreateChallengeRequest.model_validate(
            {"userId": "user-1", "action": "a", "phoneNumber": PHONE, "scope": "add:authenticators"}
        )
    )
    code = mfa.code()
    mfa.authenticators.enroll("user-1", OTHER)

    result = world.service.verify(sent.challenge_id, code)

    assert (result.is_verified, result.failure_reason) == (False, "CODE_INVALID_OR_EXPIRED")
    assert mfa.identities.get_authenticator("user-1").phone_number == OTHER


def test_a_challenge_validates_once_whatever_tokens_it_produced(world):
    # Given a challenge verified by the server (its token), and a second token of the same challenge (as a claim
    # issues one for the claiming user)
    challenge = world.starter.create(world.policy, action="signIn", phone_number="+14155552671", user_id="u-1")
    verified = world.verifier.verify(challenge.challenge_id, world.sender.last_code(), world.policy)
    assert verified.token is not None
    stored = world.repository.challenges[challenge.challenge_id]
    second = world.verifier.token_for(stored, world.policy, user_id="u-1")

    # When both are validated, then only the first proves the sign-in: one code, one proof
    assert world.validator.validate(verified.token, "signIn", world.policy).valid is True
    refused = world.validator.validate(second, "signIn", world.policy)
    assert refused.valid is False and refused.failure_reason == "TOKEN_ALREADY_USED"
