"""Regression tests of the security review's findings (issue 7), over in-memory fakes.

Each test fails on the code the review attacked and passes after the fix; races and the store's own conditions
are tested again on DynamoDB Local in tests/integration/test_repository_contract.py.
"""

from __future__ import annotations

import pytest

from otp_core.errors import (
    ForbiddenError,
    InvalidMessageTemplateError,
    InvalidPhoneNumberError,
    InvalidRequestError,
    RateLimitedError,
    UnauthorizedError,
)
from otp_core.models import CreateChallengeRequest, TrackRequest
from otp_core.policy import ip_subject
from otp_core.rules import load_rules
from otp_core.service import Proof
from tests.unit.test_mfa import Mfa

PHONE, OTHER, THIRD = "+14155552671", "+14155552672", "+14155552673"


def create(world, **fields):
    return world.service.create(CreateChallengeRequest.model_validate({"action": "signIn", **fields}))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


@pytest.fixture
def mfa(world) -> Mfa:
    return Mfa(world)


def tracked(mfa: Mfa, user: str = "user-1", action: str = "signIn") -> dict:
    """The verified claims of a fresh client token (checked against the world's clock)."""
    return mfa.track(user=user, action=action)[1]


def succeeded(mfa: Mfa, user: str = "user-1") -> tuple[str, dict]:
    """A CHALLENGE_SUCCEEDED client token of an enrolled user (a step-up proof) and its claims."""
    _, claims = mfa.track(user=user)
    mfa.service.client_challenge(claims)
    token = mfa.service.client_verify(claims, mfa.code()).token
    assert token is not None
    return token, mfa.service.authenticate(f"Bearer {token}")


def succeeded_claims(mfa: Mfa, user: str = "user-1") -> dict:
    return succeeded(mfa, user)[1]


# -- 1. an access token alone never moves the second factor ---------------------------------------------------


def test_signed_in_validate_keeps_an_enrolled_number(mfa):
    # Given a user with an enrolled number, and someone holding only the user's IdP access token
    enrolled = mfa.authenticators.enroll("user-1", PHONE)

    # When they verify their own number through the signed-in endpoints
    mfa.phone.send("user-1", OTHER, None, None)
    result = mfa.phone.validate("user-1", OTHER, mfa.code())

    # Then the number is verified but the authenticator is untouched
    assert (result.verified, result.enrolled) == (True, False)
    kept = mfa.identities.get_authenticator("user-1")
    assert (kept.authenticator_id, kept.phone_number) == (enrolled.authenticator_id, PHONE)


def test_signed_in_validate_does_not_enroll_when_a_number_is_enrolled_meanwhile(mfa):
    # Given a signed-in verification pending while the user has no authenticator
    mfa.phone.send("user-1", OTHER, None, None)
    code = mfa.code()

    # When a number is enrolled before the passcode comes back
    mfa.authenticators.enroll("user-1", PHONE)
    result = mfa.phone.validate("user-1", OTHER, code)

    # Then the passcode verifies the number, and the enrolled number stays
    assert (result.verified, result.enrolled) == (True, False)
    assert mfa.identities.get_authenticator("user-1").phone_number == PHONE


def test_a_replaced_number_gets_a_new_authenticator_id(mfa):
    # Given an enrolled user and a server update:authenticators challenge to a new number
    old = mfa.authenticators.enroll("user-1", PHONE)
    sent = create(mfa.world, userId="user-1", phoneNumber=OTHER, scope="update:authenticators")

    # When it is verified
    assert mfa.world.service.verify(sent.challenge_id, mfa.code()).is_verified

    # Then the new number is a new authenticator
    new = mfa.identities.get_authenticator("user-1")
    assert new.phone_number == OTHER and new.authenticator_id != old.authenticator_id


# -- 2. a step-up proof authorises one enrollment change, none once validated ---------------------------------


def test_a_step_up_proof_changes_the_number_once(mfa):
    # Given an enrolled user who proved the current number once
    mfa.authenticators.enroll("user-1", PHONE)
    proof = succeeded_claims(mfa)

    # When the proof changes the number, then tries to change it again
    mfa.service.client_enroll(proof, OTHER)
    assert mfa.service.client_verify(proof, mfa.code()).is_verified

    # Then the second change is refused: the proof is spent, and it proves a number that is no longer enrolled
    with pytest.raises(ForbiddenError):
        mfa.service.client_enroll(proof, THIRD)
    assert mfa.identities.get_authenticator("user-1").phone_number == OTHER


def test_two_enrollments_started_with_one_proof_change_the_number_once(mfa, world):
    # Given two enrollment challenges started with the same proof, to two numbers
    current = mfa.authenticators.enroll("user-1", PHONE)
    proof = succeeded_claims(mfa)
    spent = Proof(proof["jti"], proof["exp"])
    enrollment = {"user_id": "user-1", "scope": "update:authenticators", "replaces": current.authenticator_id}
    first, _ = world.service.start(OTHER, "signIn", proof=spent, **enrollment)
    first_code = mfa.code()
    second, _ = world.service.start(THIRD, "signIn", proof=spent, **enrollment)
    second_code = mfa.code()

    # When both codes come back
    results = [
        world.service.verify(second.challenge_id, second_code).is_verified,
        world.service.verify(first.challenge_id, first_code).is_verified,
    ]

    # Then exactly one change happened
    assert results == [True, False]
    assert mfa.identities.get_authenticator("user-1").phone_number == THIRD


def test_a_validated_proof_changes_nothing(mfa):
    # Given a proof the customer's server already validated
    mfa.authenticators.enroll("user-1", PHONE)
    token, proof = succeeded(mfa)
    assert mfa.service.validate(token, "signIn").is_valid

    # When it is used to change the number, then 403 and nothing changes
    with pytest.raises(ForbiddenError):
        mfa.service.client_enroll(proof, OTHER)
    assert mfa.identities.get_authenticator("user-1").phone_number == PHONE


def test_a_proof_validated_while_the_change_is_pending_cancels_it(mfa):
    # Given an enroll challenge started with a proof
    mfa.authenticators.enroll("user-1", PHONE)
    token, proof = succeeded(mfa)
    mfa.service.client_enroll(proof, OTHER)
    code = mfa.code()

    # When the server validates the proof before the new number's code comes back
    assert mfa.service.validate(token, "signIn").is_valid
    result = mfa.service.client_verify(proof, code)

    # Then the change does not happen
    assert result.is_verified is False
    assert mfa.identities.get_authenticator("user-1").phone_number == PHONE


# -- 3. one spelling per subscriber ---------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["+114155552671", "+4407911123456", "+5703001234567", "+1 4155552671"])
def test_only_canonical_numbers_are_accepted_everywhere(mfa, spelling):
    with pytest.raises(InvalidPhoneNumberError):
        create(mfa.world, phoneNumber=spelling)
    with pytest.raises(InvalidPhoneNumberError):
        mfa.authenticators.enroll("user-1", spelling)
    _, claims = mfa.track(user="user-2")
    with pytest.raises(InvalidPhoneNumberError):
        mfa.service.client_enroll(claims, spelling)
    with pytest.raises(InvalidPhoneNumberError):
        mfa.phone.send("user-3", spelling, None, None)
    with pytest.raises(InvalidPhoneNumberError):
        mfa.phone.validate("user-3", spelling, "123456")
    with pytest.raises(InvalidPhoneNumberError):
        mfa.service.track(
            TrackRequest.model_validate({"userId": "u", "action": "a", "attributes": {"phoneNumber": spelling}})
        )
    assert mfa.world.sender.sent == []


def test_a_number_stored_under_v1_with_a_trunk_prefix_is_sent_canonically(mfa, world):
    # Given an authenticator stored before v1.1 under a non-canonical spelling
    from otp_core.records import Authenticator

    mfa.identities.authenticators["user-1"] = Authenticator("a-1", "user-1", "+4407911123456", 1, 1)

    # When the user is challenged, then the code goes to the canonical number
    create(world, userId="user-1")
    assert world.sender.sent[-1].to == "+447911123456"


# -- 4. end users do not write the SMS ------------------------------------------------------------------------


def test_end_user_text_needs_app_and_no_links(mfa):
    for message in ("Your code is {otp}", "{app} {otp} see evil.com", "{app} {otp} mail x@y.io", "{app} {otp} 5550100"):
        with pytest.raises(InvalidMessageTemplateError):
            mfa.phone.send("user-1", PHONE, message, None)
    # the customer's server keeps its freedom
    create(mfa.world, phoneNumber=PHONE, message="Your code is {otp}, see example.com", senderId="YourBank")
    assert mfa.world.sender.sent[-1].sender_id == "YourBank"


def test_end_user_sender_id_must_be_allowed(make_world):
    locked_down, allowed = Mfa(make_world()), Mfa(make_world(end_user_sender_ids=("Acme",)))

    with pytest.raises(InvalidRequestError) as refused:
        locked_down.phone.send("user-1", PHONE, None, "YourBank")
    allowed.phone.send("user-1", PHONE, None, "Acme")

    assert refused.value.errors[0].field == "senderId"
    assert locked_down.world.sender.sent == []
    assert allowed.world.sender.sent[-1].sender_id == "Acme"


# -- 6. the owner's allowance and lock ------------------------------------------------------------------------


def test_strangers_cannot_spend_the_owners_allowance(make_world):
    # Given a user's enrolled number, and strangers filling its daily cap with sends not naming the owner
    mfa = Mfa(make_world(max_sends_per_10_minutes=10))
    world = mfa.world
    mfa.authenticators.enroll("victim", PHONE)
    for index in range(10):
        create(world, phoneNumber=PHONE, userId=f"throwaway-{index}")
    with pytest.raises(RateLimitedError):
        create(world, phoneNumber=PHONE)

    # When the owner signs in, then their own challenge still goes out (client and server)
    mfa.service.client_challenge(tracked(mfa, user="victim"))
    create(world, userId="victim")
    assert world.sender.sent[-1].to == PHONE


def test_strangers_wrong_guesses_cannot_lock_the_owner_out(mfa, world):
    # Given ten wrong guesses on challenges to the victim's number that do not name the victim
    mfa.authenticators.enroll("victim", PHONE)
    for _ in range(2):
        challenge = create(world, phoneNumber=PHONE)
        for _ in range(5):
            world.service.verify(challenge.challenge_id, wrong(mfa.code()))
        world.clock.advance(120)
    with pytest.raises(RateLimitedError):
        create(world, phoneNumber=PHONE)  # the number is locked for everyone else

    # When the owner is challenged, then the owner's code still works
    claims = tracked(mfa, user="victim")
    mfa.service.client_challenge(claims)
    assert mfa.service.client_verify(claims, mfa.code()).is_verified


def test_the_owners_own_wrong_guesses_lock_everyone(mfa, world):
    # Given ten wrong guesses on the owner's own challenges (someone with the owner's password)
    mfa.authenticators.enroll("victim", PHONE)
    for _ in range(2):
        challenge = create(world, userId="victim")
        for _ in range(5):
            world.service.verify(challenge.challenge_id, wrong(mfa.code()))
        world.clock.advance(120)

    # Then both the owner's and everyone else's challenges to the number are locked
    with pytest.raises(RateLimitedError):
        create(world, userId="victim")
    with pytest.raises(RateLimitedError):
        create(world, phoneNumber=PHONE)


# -- 7. a tracked attempt's expiry bounds its tokens ----------------------------------------------------------


def test_tokens_never_outlive_their_tracked_attempt(mfa, world):
    # Given a tracked attempt whose code is verified shortly before the attempt expires
    mfa.authenticators.enroll("user-1", PHONE)
    _, claims = mfa.track()
    world.clock.advance(500)
    mfa.service.client_challenge(claims)
    token = mfa.service.client_verify(claims, mfa.code()).token

    # Then the new token expires with the attempt, not 10 minutes later
    success = mfa.service.authenticate(f"Bearer {token}")
    assert success["exp"] == claims["exp"] == mfa.identities.get_attempt(claims["trk"]).expires_at
    assert success["exp"] - success["iat"] == 100


def test_an_expired_attempt_verifies_nothing(mfa, world):
    # Given a code sent for a tracked attempt
    mfa.authenticators.enroll("user-1", PHONE)
    _, claims = mfa.track()
    mfa.service.client_challenge(claims)
    code = mfa.code()

    # When the attempt has expired (the challenge itself is still pending), then nothing verifies
    world.clock.advance(600)
    with pytest.raises(UnauthorizedError):
        mfa.service.client_verify(claims, code)
    attempt = mfa.identities.get_attempt(claims["trk"])
    check = world.service.check_code(attempt.challenge_id, code, user_id="user-1", attempt_id=attempt.attempt_id)
    assert check.verified is False
    assert attempt.state != "CHALLENGE_SUCCEEDED"


# -- 8. per-IP caps count one address once --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("198.51.100.71", "198.51.100.71"),
        ("::ffff:198.51.100.71", "198.51.100.71"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
    ],
)
def test_addresses_are_counted_canonically(address, counted):
    assert ip_subject(address) == counted


@pytest.mark.parametrize("bad", ["fe80::1%eth0", "198.51.100.71/32", "localhost", "", "1.2.3"])
def test_what_is_not_an_address_is_refused(bad):
    with pytest.raises(ValueError, match=r"."):
        ip_subject(bad)
    with pytest.raises(ValueError, match=r"."):
        CreateChallengeRequest.model_validate({"phoneNumber": PHONE, "action": "a", "ipAddress": bad})


def test_per_ip_cap_holds_across_spellings_and_a_64(make_world):
    world = make_world(max_sends_per_ip_per_hour=2)
    create(world, phoneNumber=PHONE, ipAddress="198.51.100.71")
    create(world, phoneNumber=OTHER, ipAddress="::ffff:198.51.100.71")
    with pytest.raises(RateLimitedError):
        create(world, phoneNumber=THIRD, ipAddress="::ffff:c633:6447")  # the same address, hex-spelled

    create(world, phoneNumber=PHONE, ipAddress="2001:db8::1")
    create(world, phoneNumber=OTHER, ipAddress="2001:db8::2")
    with pytest.raises(RateLimitedError):
        create(world, phoneNumber=THIRD, ipAddress="2001:db8::ffff:3")
    create(world, phoneNumber=THIRD, ipAddress="2001:db8:0:1::3")  # another /64 has its own allowance


# -- 9. sliding lockout ---------------------------------------------------------------------------------------


def test_no_burst_around_a_window_boundary_passes_the_lockout(make_world):
    # Given nine wrong codes in the last seconds of a lockout window (threshold 10 per hour)
    world = make_world(max_attempts=10, max_sends_per_10_minutes=100, max_sends_per_day=100)
    world.clock.current = world.clock.current // 3600 * 3600 + 3590
    challenge = create(world, phoneNumber=PHONE)
    code = world.sender.last_code()
    for _ in range(9):
        world.service.verify(challenge.challenge_id, wrong(code))

    # When the next window opens and the guessing goes on
    world.clock.advance(20)
    second = create(world, phoneNumber=PHONE)
    world.service.verify(second.challenge_id, wrong(world.sender.last_code()))

    # Then the tenth failure locks the number (a fixed window would have allowed nine more)
    with pytest.raises(RateLimitedError) as locked:
        world.service.verify(second.challenge_id, wrong(world.sender.last_code()))
    assert locked.value.retry_after == 900
    with pytest.raises(RateLimitedError):
        create(world, phoneNumber=PHONE)


# -- 12. validate names a reason for every refusal ------------------------------------------------------------


def test_validate_of_a_track_token_says_the_challenge_is_not_completed(mfa):
    result, _ = mfa.track()
    validated = mfa.service.validate(result.token, None)
    assert (validated.is_valid, validated.failure_reason, validated.state) == (
        False,
        "CHALLENGE_NOT_COMPLETED",
        "ALLOW",
    )


# -- 13. the code length is the challenge's ------------------------------------------------------------------


def test_a_code_length_change_keeps_pending_challenges_working(world):
    # Given a pending 6-digit challenge
    sent = create(world, phoneNumber=PHONE)
    code = world.sender.last_code()

    # When the policy moves to 8 digits
    world.policy = world.policy.model_copy(update={"code_length": 8})
    world.clock.advance(30)
    world.service.resend(sent.challenge_id)

    # Then the resend carries the same 6-digit code, which verifies; new challenges get 8 digits
    assert world.sender.last_code() == code
    assert world.service.verify(sent.challenge_id, code).is_verified
    create(world, phoneNumber=OTHER)
    assert len(world.sender.last_code()) == 8


# -- review suspicions ----------------------------------------------------------------------------------------


def test_deleting_or_replacing_an_authenticator_cancels_pending_enrollments(mfa, world):
    # Given pending update:authenticators challenges started against the current authenticator
    old = mfa.authenticators.enroll("user-1", PHONE)
    after_delete = create(world, userId="user-1", phoneNumber=OTHER, scope="update:authenticators")
    delete_code = mfa.code()
    mfa.authenticators.delete("user-1", old.authenticator_id)

    # When the authenticator was deleted, then the pending change no longer counts
    assert world.service.verify(after_delete.challenge_id, delete_code).is_verified is False
    assert mfa.identities.get_authenticator("user-1") is None

    # And likewise when it was replaced by another number
    mfa.authenticators.enroll("user-1", PHONE)
    pending = create(world, userId="user-1", phoneNumber=OTHER, scope="update:authenticators")
    code = mfa.code()
    mfa.authenticators.enroll("user-1", THIRD)
    assert world.service.verify(pending.challenge_id, code).is_verified is False
    assert mfa.identities.get_authenticator("user-1").phone_number == THIRD


def test_allow_marks_a_device_known_only_for_that_action(world):
    # Given rules that allow a harmless action and challenge new devices on a sensitive one
    mfa = Mfa(world)
    mfa.service._rules = load_rules(
        '{"actions": {"viewPage": {"default": "ALLOW"}, "withdraw": {"default": "ALLOW", "rules": ['
        '{"outcome": "CHALLENGE_REQUIRED", "when": [{"attribute": "deviceId", "op": "newDevice"}]}]}}}'
    )

    # When a device is allowed in for the harmless action first
    allowed, _ = mfa.track(action="viewPage", deviceId="attacker-laptop")
    sensitive, _ = mfa.track(action="withdraw", deviceId="attacker-laptop")

    # Then it is still a new device for the sensitive one
    assert allowed.state == "ALLOW"
    assert sensitive.state == "CHALLENGE_REQUIRED"


# -- second review (attacks on the fixes) ---------------------------------------------------------------------


def test_strangers_behind_the_owners_address_cannot_deny_the_owner(make_world):
    # Given strangers who spend the per-address cap of an office's shared address on sign-ups
    mfa = Mfa(make_world(max_sends_per_ip_per_hour=3))
    mfa.authenticators.enroll("victim", PHONE)
    for index in range(3):
        mfa.service.client_enroll(tracked(mfa, user=f"stranger-{index}"), f"+1415555{2700 + index:04d}", "203.0.113.9")
    with pytest.raises(RateLimitedError):
        mfa.service.client_enroll(tracked(mfa, user="stranger-9"), "+14155552799", "203.0.113.9")

    # When the owner asks for a code from the same address, then it is sent
    mfa.service.client_challenge(tracked(mfa, user="victim"), "203.0.113.9")
    assert mfa.world.sender.sent[-1].to == PHONE


def test_retry_after_is_the_longest_wait_among_full_caps(world):
    # Given the 10-minute cap and the day cap both full
    for _ in range(5):
        create(world, phoneNumber=PHONE)
    world.clock.advance(1300)
    for _ in range(5):
        create(world, phoneNumber=PHONE)

    # When one more is asked for, then the wait is the day cap's, not the shorter 10-minute one
    with pytest.raises(RateLimitedError) as limited:
        create(world, phoneNumber=PHONE)
    assert limited.value.retry_after > 3600
    world.clock.advance(limited.value.retry_after)
    create(world, phoneNumber=PHONE)


def test_a_sign_in_code_to_a_replaced_number_proves_nothing(mfa, world):
    # Given a sign-in challenge sent to the enrolled number
    mfa.authenticators.enroll("user-1", PHONE)
    claims = tracked(mfa)
    mfa.service.client_challenge(claims)
    code = mfa.code()
    server = create(world, userId="user-1")
    server_code = mfa.code()

    # When the number is replaced (a lost phone reported) before the codes come back
    mfa.authenticators.enroll("user-1", OTHER)

    # Then neither the client nor the server challenge verifies
    assert mfa.service.client_verify(claims, code).is_verified is False
    assert world.service.verify(server.challenge_id, server_code).is_verified is False


def test_an_invalid_ip_address_is_not_echoed():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        CreateChallengeRequest.model_validate({"phoneNumber": PHONE, "action": "a", "ipAddress": "<b>echo-me</b>"})
    assert "echo-me" not in str(refused.value.errors(include_input=False))


def test_a_signed_in_resend_still_checks_the_end_users_text(mfa):
    # Given a pending signed-in verification
    mfa.phone.send("user-1", PHONE, None, None)
    mfa.world.clock.advance(30)

    # When the same number is sent again with a phishing text or a forbidden sender ID, then it is refused
    with pytest.raises(InvalidMessageTemplateError):
        mfa.phone.send("user-1", PHONE, "{app} {otp} verify at evil.com", None)
    with pytest.raises(InvalidRequestError):
        mfa.phone.send("user-1", PHONE, None, "YourBank")
    assert len(mfa.world.sender.sent) == 1
