"""The challenge use cases over in-memory fakes: limits, attempts, single use, expiry, lockout."""

from __future__ import annotations

import threading

import pytest

from otp_core.errors import (
    ConflictError,
    DeliveryFailedError,
    InvalidMessageTemplateError,
    InvalidPhoneNumberError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    UnsupportedCountryError,
    UnsupportedNumberTypeError,
)
from otp_core.models import CreateChallengeRequest
from otp_core.tokens import VERIFICATION_TOKEN_TYPE

PHONE = "+14155552671"


def start(world, **fields):
    request = CreateChallengeRequest.model_validate({"phoneNumber": PHONE, "action": "signInWithSms", **fields})
    return world.service.create(request)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def test_create_sends_one_sms_and_stores_no_code(world):
    sent = start(world)

    assert sent.phone_mask == "2671"
    assert sent.attempts_remaining == 5
    assert len(world.sender.sent) == 1
    code = world.sender.last_code()
    stored = world.repository.challenges[sent.challenge_id]
    assert code not in repr(stored)
    assert world.sender.sent[0].body.startswith(f"{code} is your SMS OTP verification code")


def test_right_code_verifies_once_and_issues_a_token(world):
    sent = start(world, userId="user-1")
    code = world.sender.last_code()

    result = world.service.verify(sent.challenge_id, code)
    again = world.service.verify(sent.challenge_id, code)

    assert result.is_verified and result.attempts_remaining == 0
    assert (result.user_id, result.phone_number, result.action) == ("user-1", PHONE, "signInWithSms")
    claims = world.token_verifier.verify(result.token, token_type=VERIFICATION_TOKEN_TYPE)
    assert claims["sub"] == "user-1"
    assert claims["chl"] == sent.challenge_id
    assert claims["state"] == "CHALLENGE_SUCCEEDED"
    assert claims["amr"] == ["sms"]
    assert claims["phone_number_verified"] is True
    assert claims["exp"] - claims["iat"] == 600
    assert not again.is_verified and again.failure_reason == "CODE_INVALID_OR_EXPIRED"


def test_brute_force_stops_at_max_attempts_even_for_the_right_code(world):
    sent = start(world)
    code = world.sender.last_code()

    results = [world.service.verify(sent.challenge_id, wrong(code)) for _ in range(5)]
    after = world.service.verify(sent.challenge_id, code)

    assert [r.attempts_remaining for r in results] == [4, 3, 2, 1, 0]
    assert all(r.failure_reason == "CODE_INVALID_OR_EXPIRED" for r in results)
    assert not after.is_verified and after.failure_reason == "MAX_ATTEMPTS_EXCEEDED"
    assert world.service.get(sent.challenge_id).state == "FAILED"


def test_fifty_concurrent_wrong_guesses_count_at_most_max_attempts(world):
    sent = start(world)
    code = world.sender.last_code()
    barrier = threading.Barrier(50)

    def guess() -> None:
        barrier.wait()
        world.service.verify(sent.challenge_id, wrong(code))

    threads = [threading.Thread(target=guess) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert world.repository.challenges[sent.challenge_id].attempts == 5
    assert world.service.verify(sent.challenge_id, code).failure_reason == "MAX_ATTEMPTS_EXCEEDED"


def test_expired_challenge_rejects_the_right_code(world):
    sent = start(world)
    code = world.sender.last_code()
    world.clock.advance(600)

    result = world.service.verify(sent.challenge_id, code)

    assert not result.is_verified and result.failure_reason == "CODE_INVALID_OR_EXPIRED"
    assert world.service.get(sent.challenge_id).state == "EXPIRED"


@pytest.mark.parametrize("challenge_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", ""])
def test_unknown_and_malformed_ids_answer_like_a_wrong_code(world, challenge_id):
    result = world.service.verify(challenge_id, "123456")
    assert (result.is_verified, result.failure_reason, result.attempts_remaining) == (
        False,
        "CODE_INVALID_OR_EXPIRED",
        0,
    )
    with pytest.raises(NotFoundError):
        world.service.get(challenge_id)
    with pytest.raises(ConflictError):
        world.service.resend(challenge_id)


def test_code_of_the_wrong_length_is_a_bad_request_and_costs_no_attempt(world):
    sent = start(world)
    with pytest.raises(InvalidRequestError):
        world.service.verify(sent.challenge_id, "1234")
    assert world.repository.challenges[sent.challenge_id].attempts == 0


def test_resend_sends_the_same_code_and_doubles_the_cooldown(world):
    sent = start(world)
    code = world.sender.last_code()
    with pytest.raises(RateLimitedError) as early:
        world.service.resend(sent.challenge_id)
    assert early.value.retry_after == 30

    world.clock.advance(30)
    first = world.service.resend(sent.challenge_id)
    world.clock.advance(59)
    with pytest.raises(RateLimitedError) as second_early:
        world.service.resend(sent.challenge_id)
    world.clock.advance(1)
    world.service.resend(sent.challenge_id)

    assert second_early.value.retry_after == 1
    assert [sms.body.split()[0] for sms in world.sender.sent] == [code, code, code]
    assert first.expires_at == sent.expires_at
    assert world.repository.challenges[sent.challenge_id].next_resend_at == world.clock.now() + 120


def test_resend_of_a_finished_challenge_conflicts(world):
    sent = start(world)
    world.service.verify(sent.challenge_id, world.sender.last_code())
    world.clock.advance(30)
    with pytest.raises(ConflictError):
        world.service.resend(sent.challenge_id)


def test_send_caps_per_number_answer_retry_after(world):
    # Given five sends at the start of a 10-minute window (early in a UTC day, so the day cap stays out of it)
    world.clock.current = world.clock.current // 86400 * 86400 + 3600
    for _ in range(5):
        start(world)

    # When a sixth is asked for, then it is refused with the time until the sliding window admits one
    with pytest.raises(RateLimitedError) as limited:
        start(world)
    assert limited.value.retry_after == 720  # the window must roll over and the five decay to four
    world.clock.advance(719)
    with pytest.raises(RateLimitedError):
        start(world)
    world.clock.advance(1)
    start(world)
    assert len(world.sender.sent) == 6


def test_send_caps_slide_across_a_window_boundary(world):
    # Given five sends in the last second of a 10-minute window (the cap is 5 per 10 minutes)
    world.clock.current = world.clock.current // 86400 * 86400 + 3600 + 599
    for _ in range(5):
        start(world)

    # When the next window opens two seconds later
    world.clock.advance(2)

    # Then the burst still counts: no boundary lets twice the cap through
    with pytest.raises(RateLimitedError):
        start(world)
    assert len(world.sender.sent) == 5


def test_daily_cap_per_number(world):
    # Given sends spread over a day, never faster than the 10-minute cap allows
    world.clock.current = world.clock.current // 86400 * 86400 + 3600
    statuses = []
    for _ in range(14):
        try:
            start(world)
            statuses.append("sent")
        except RateLimitedError:
            statuses.append("limited")
        world.clock.advance(1800)

    # Then the daily cap of ten holds
    assert statuses.count("sent") == 10 and statuses[10:] == ["limited"] * 4


def test_per_ip_cap_applies_across_numbers(make_world):
    world = make_world(max_sends_per_ip_per_hour=2)
    for number in ("+14155552671", "+14155552672"):
        world.service.create(
            CreateChallengeRequest.model_validate({"phoneNumber": number, "action": "a", "ipAddress": "198.51.100.7"})
        )
    with pytest.raises(RateLimitedError):
        world.service.create(
            CreateChallengeRequest.model_validate(
                {"phoneNumber": "+14155552673", "action": "a", "ipAddress": "198.51.100.7"}
            )
        )


def test_repeated_failures_lock_the_number_for_sends_and_verifies(make_world):
    world = make_world(max_attempts=5, max_sends_per_10_minutes=10)
    first, second = start(world), start(world)
    code = world.sender.last_code()
    for challenge in (first, first, first, first, first, second, second, second, second, second):
        world.service.verify(challenge.challenge_id, "000000" if code != "000000" else "111111")

    with pytest.raises(RateLimitedError) as on_send:
        start(world)
    third_attempt = None
    world.clock.advance(899)
    with pytest.raises(RateLimitedError):
        start(world)
    world.clock.advance(1)
    third_attempt = start(world)

    assert on_send.value.retry_after == 900
    assert third_attempt.attempts_remaining == 5


def test_failed_delivery_is_not_charged_and_leaves_no_challenge(world):
    world.sender.fail = True
    with pytest.raises(DeliveryFailedError):
        start(world)
    world.sender.fail = False

    assert world.repository.challenges == {}
    for _ in range(5):
        start(world)


def test_claim_is_idempotent_for_one_user_and_exclusive(world):
    sent = start(world)
    with pytest.raises(ConflictError):
        world.service.claim(sent.challenge_id, "user-1")
    world.service.verify(sent.challenge_id, world.sender.last_code())

    claimed = world.service.claim(sent.challenge_id, "user-1")
    again = world.service.claim(sent.challenge_id, "user-1")

    assert (claimed.user_id, claimed.phone_number) == ("user-1", PHONE)
    assert again == claimed
    with pytest.raises(ConflictError):
        world.service.claim(sent.challenge_id, "user-2")
    assert world.service.get(sent.challenge_id).state == "CLAIMED"
    assert world.service.get(sent.challenge_id).user_id == "user-1"


def test_custom_message_and_locale(world):
    start(world, message="{app}: code {otp}, valid {minutes} min", senderId="MyApp")
    start(world, locale="es-MX")

    custom, spanish = world.sender.sent
    assert custom.body == f"SMS OTP: code {custom.body.split()[3][:-1]}, valid 10 min"
    assert custom.sender_id == "MyApp"
    assert " es tu clave de SMS OTP" in spanish.body


@pytest.mark.parametrize("message", ["no placeholder", "{otp} {name}", "{otp} " + "x" * 160, "{otp} {", "{otp} }"])
def test_invalid_custom_messages_are_rejected_before_anything_is_sent(world, message):
    with pytest.raises(InvalidMessageTemplateError):
        start(world, message=message)
    assert world.sender.sent == []


@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("4155552671", InvalidPhoneNumberError),
        ("+1 415 555 2671", InvalidPhoneNumberError),
        ("+1415555267", InvalidPhoneNumberError),
        ("+19995551234", InvalidPhoneNumberError),
        ("+442071838750", UnsupportedNumberTypeError),
        ("+18005550199", UnsupportedNumberTypeError),
    ],
)
def test_phone_policy(world, number, error):
    with pytest.raises(error):
        start(world, phoneNumber=number)


def test_country_allow_and_block_lists(make_world):
    allowed_nz = make_world(allowed_countries="NZ")
    with pytest.raises(UnsupportedCountryError):
        start(allowed_nz)
    blocked_us = make_world(blocked_countries="US")
    with pytest.raises(UnsupportedCountryError):
        start(blocked_us)
    allowed_nz.service.create(CreateChallengeRequest.model_validate({"phoneNumber": "+64211234567", "action": "a"}))
