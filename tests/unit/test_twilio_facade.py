"""The Twilio Verify facade over the core's use cases and in-memory fakes: Twilio's resources, statuses and numeric
errors, with every rule of the native API behind them (attempts, expiry, single use, caps, cooldown, lockout,
fraud and spend guards, test numbers), the strict form parsing and the HTTP Basic check."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest

from otp_core.apps import KeyGrant
from otp_core.errors import (
    ConflictError,
    DeliveryFailedError,
    DependencyError,
    DestinationBlockedError,
    InvalidMessageTemplateError,
    InvalidPhoneNumberError,
    InvalidRequestError,
    NotFoundError,
    OtpError,
    RateLimitedError,
    SendBudgetExceededError,
    UnauthorizedError,
    UnsupportedCountryError,
    UnsupportedNumberTypeError,
)
from otp_core.facades.twilio import (
    ACTION,
    Caller,
    Service,
    TwilioAnswer,
    TwilioCredentials,
    TwilioError,
    TwilioVerify,
    parse_form,
    send_times,
    serve,
    twilio_error,
    verification_sid,
)
from otp_core.fraud import Block, Reason, parse_bucket
from otp_core.http import basic_credentials
from otp_core.records import ChallengeState
from otp_core.settings import Settings
from tests.fakes import FakeClock

PHONE = "+14155552671"
OTHER = "+14155552672"
HEX = "0123456789abcdef" * 2
SERVICE = Service(f"VA{HEX}", f"AC{HEX}", f"https://api.example/twilio/v2/Services/VA{HEX}")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Twilio:
    """The facade as the function calls it: every answer, error or not, in Twilio's shape."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.facade = TwilioVerify(
            world.starter, world.checker, world.records, world.identities, lambda to: f"twilio/{to}"
        )
        self.caller = Caller("default", world.policy, SERVICE)

    def create(self, to: str | None = PHONE, channel: str | None = "sms", **fields: str) -> TwilioAnswer:
        form = {**({"To": to} if to is not None else {}), **({"Channel": channel} if channel else {}), **fields}
        return serve(lambda: self.facade.create(self.caller, form))

    def fetch(self, sid: str) -> TwilioAnswer:
        return serve(lambda: self.facade.fetch(self.caller, sid))

    def update(self, sid: str, **form: str) -> TwilioAnswer:
        return serve(lambda: self.facade.update(self.caller, sid, form))

    def check(self, code: str, **form: str) -> TwilioAnswer:
        return serve(lambda: self.facade.check(self.caller, {"Code": code, **form}))

    def code(self) -> str:
        return str(self.world.sender.last_code())


@pytest.fixture
def twilio(world: Any) -> Twilio:
    return Twilio(world)


@pytest.fixture
def make_twilio(make_world: Any) -> Any:
    return lambda **settings: Twilio(make_world(**settings))


def error(answer: TwilioAnswer, status: int, code: int) -> str:
    """The message of a Twilio error answer, after checking its shape as twilio-python reads it."""
    assert answer.status == status, answer.body
    assert answer.body == {
        "code": code,
        "message": answer.body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    message: str = answer.body["message"]
    return message


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# ------------------------------------------------------------------------------------ start a verification


def test_create_sends_one_sms_and_answers_twilios_verification_resource(twilio: Twilio) -> None:
    answer = twilio.create()

    assert answer.status == 201
    body = answer.body
    (challenge,) = twilio.world.repository.challenges.values()
    assert body["sid"] == "VE" + uuid.UUID(challenge.challenge_id).hex
    assert re.fullmatch(r"VE[0-9a-f]{32}", body["sid"])
    assert (body["service_sid"], body["account_sid"]) == (SERVICE.service_sid, SERVICE.account_sid)
    assert (body["to"], body["channel"], body["status"], body["valid"]) == (PHONE, "sms", "pending", False)
    assert body["url"] == f"{SERVICE.url}/Verifications/{body['sid']}"
    assert ISO.match(body["date_created"]) and ISO.match(body["date_updated"])
    (attempt,) = body["send_code_attempts"]
    assert re.fullmatch(r"VL[0-9a-f]{32}", attempt["attempt_sid"])
    assert attempt["channel"] == "sms" and attempt["time"] == body["date_created"]
    assert body["lookup"]["carrier"]["type"] is None
    assert (body["amount"], body["payee"], body["sna"]) == (None, None, None)
    # And the core sent exactly one SMS, with the app's template, and keeps the challenge as its own
    assert len(twilio.world.sender.sent) == 1
    assert twilio.world.sender.sent[0].body.startswith(f"{twilio.code()} is your SMS OTP verification code")
    assert challenge.action == ACTION and challenge.user_id is None


def test_create_again_resends_the_same_code_on_the_same_verification_after_the_cooldown(twilio: Twilio) -> None:
    first = twilio.create()
    code = twilio.code()
    inside = twilio.create()
    twilio.world.clock.advance(30)
    again = twilio.create()

    # Inside the cooldown nothing is sent: Twilio's "max send attempts" with the wait
    assert "Max send attempts reached" in error(inside, 429, 60203)
    assert inside.headers["Retry-After"] == "30"
    # After it, the same verification and the same code, with a second send attempt
    assert again.status == 201
    assert again.body["sid"] == first.body["sid"]
    assert len(again.body["send_code_attempts"]) == 2
    assert again.body["send_code_attempts"][1]["time"] == again.body["date_updated"]
    assert [sms.body.split()[0] for sms in twilio.world.sender.sent] == [code, code]
    assert len(twilio.world.repository.challenges) == 1


def test_a_new_verification_starts_once_the_pending_one_is_gone(twilio: Twilio) -> None:
    first = twilio.create()
    twilio.world.clock.advance(600)

    second = twilio.create()

    assert second.status == 201 and second.body["sid"] != first.body["sid"]
    assert twilio.fetch(first.body["sid"]).status == 404


def test_the_send_caps_of_the_number_hold_and_a_cancel_refunds_nothing(twilio: Twilio) -> None:
    # Given five verifications to the number (the policy's cap per 10 minutes), each cancelled after its send
    for _ in range(5):
        sent = twilio.create()
        assert sent.status == 201
        assert twilio.update(sent.body["sid"], Status="canceled").status == 200

    # Then the sixth is Twilio's 60203, and nothing was sent
    refused = twilio.create()
    error(refused, 429, 60203)
    assert len(twilio.world.sender.sent) == 5


def test_a_twilio_send_charges_no_end_users_cap(twilio: Twilio) -> None:
    twilio.create()

    kinds = {kind for kind, _, _ in twilio.world.repository.counters}
    assert "USERDAY" not in kinds
    assert {"SEND10", "SENDDAY"} <= kinds


def test_device_ip_is_the_per_ip_cap_of_the_core(make_twilio: Any) -> None:
    twilio = make_twilio(max_sends_per_ip_per_hour=1)

    first = twilio.create(PHONE, DeviceIp="198.51.100.7")
    second = twilio.create(OTHER, DeviceIp="198.51.100.7")
    bad = twilio.create(OTHER, DeviceIp="not-an-ip")

    assert first.status == 201
    error(second, 429, 60203)
    assert "DeviceIp" in error(bad, 400, 60200)


@pytest.mark.parametrize("channel", ["call", "whatsapp", "email", "sna", "totp", "auto", "carrier-pigeon"])
def test_channels_other_than_sms_are_invalid_parameters(twilio: Twilio, channel: str) -> None:
    answer = twilio.create(channel=channel)

    assert error(answer, 400, 60200).startswith("Invalid parameter: Channel")
    assert twilio.world.sender.sent == []


@pytest.mark.parametrize(
    ("form", "parameter"),
    [
        ({"to": None}, "To"),
        ({"channel": None}, "Channel"),
        ({"CustomCode": "123456"}, "CustomCode"),
        ({"RiskCheck": "disable"}, "RiskCheck"),
        ({"Locale": "not a locale"}, "Locale"),
        ({"to": "+1 415 555 2671"}, "To"),
        ({"to": "+114155552671"}, "To"),
    ],
)
def test_missing_invalid_and_rule_weakening_fields_are_refused_before_anything_is_sent(
    twilio: Twilio, form: dict[str, Any], parameter: str
) -> None:
    answer = twilio.create(**form)

    assert error(answer, 400, 60200).startswith(f"Invalid parameter: {parameter}")
    assert twilio.world.sender.sent == [] and twilio.world.repository.challenges == {}


def test_a_caller_chosen_code_is_refused_with_the_reason(twilio: Twilio) -> None:
    message = error(twilio.create(CustomCode="123456"), 400, 60200)

    assert "this service draws every code" in message


def test_unknown_and_unused_twilio_fields_are_ignored(twilio: Twilio) -> None:
    answer = twilio.create(Amount="10", Payee="Acme", TemplateSid="HJ123", RiskCheck="enable", Tags="{}")

    assert answer.status == 201


def test_locale_picks_the_cores_template_of_its_language(twilio: Twilio) -> None:
    assert twilio.create(Locale="es-MX").status == 201

    assert "es tu clave de SMS OTP" in twilio.world.sender.sent[-1].body
    assert next(iter(twilio.world.repository.challenges.values())).locale == "es-MX"


def test_custom_friendly_name_is_the_app_name_of_this_message_only(twilio: Twilio) -> None:
    twilio.create(CustomFriendlyName="Acme Bank")
    twilio.create(OTHER)

    assert "is your Acme Bank verification code" in twilio.world.sender.sent[0].body
    assert "is your SMS OTP verification code" in twilio.world.sender.sent[1].body


@pytest.mark.parametrize("name", ["A name of more than twenty", "Emoji \U0001f600", "Two\nlines", "   "])
def test_a_friendly_name_the_one_part_rule_cannot_carry_is_refused(twilio: Twilio, name: str) -> None:
    answer = twilio.create(CustomFriendlyName=name)

    assert error(answer, 400, 60200).startswith("Invalid parameter: CustomFriendlyName")
    assert twilio.world.sender.sent == []


def test_app_hash_adds_the_sms_retriever_lines_to_this_message(twilio: Twilio) -> None:
    twilio.create(AppHash="FA+9qCX9VSu")
    twilio.create(OTHER)

    hashed, plain = (sms.body for sms in twilio.world.sender.sent)
    assert hashed.startswith("<#> ") and hashed.endswith("\nFA+9qCX9VSu")
    assert not plain.startswith("<#>")


def test_an_app_hash_that_would_break_the_one_part_rule_is_refused(make_twilio: Any) -> None:
    # Given an app template that fills a part on its own (150 characters with a 6-digit code)
    twilio = make_twilio(templates={"en": "{otp} " + "x" * 144})
    assert twilio.create().status == 201

    # Then the hash's lines would make it two parts: refused, nothing sent
    refused = twilio.create(OTHER, AppHash="FA+9qCX9VSu")
    malformed = twilio.create(OTHER, AppHash="short")

    assert "would no longer fit one SMS part" in error(refused, 400, 60200)
    assert error(malformed, 400, 60200).startswith("Invalid parameter: AppHash")
    assert len(twilio.world.sender.sent) == 1


def test_a_friendly_name_that_would_break_the_one_part_rule_is_refused(make_twilio: Any) -> None:
    twilio = make_twilio(templates={"en": "{otp} {app} " + "x" * 138})

    refused = twilio.create(CustomFriendlyName="Twenty characters ok")

    assert "would no longer fit one SMS part" in error(refused, 400, 60200)


# ------------------------------------------------------------------------------------------- check a code


def test_the_right_code_approves_once_and_the_verification_is_gone(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]

    approved = twilio.check(twilio.code(), To=PHONE)
    again = twilio.check(twilio.code(), To=PHONE)

    assert approved.status == 200
    body = approved.body
    assert (body["sid"], body["status"], body["valid"], body["to"], body["channel"]) == (
        sid,
        "approved",
        True,
        PHONE,
        "sms",
    )
    assert set(body) == {
        "sid",
        "service_sid",
        "account_sid",
        "to",
        "channel",
        "status",
        "valid",
        "amount",
        "payee",
        "date_created",
        "date_updated",
        "sna_attempts_error_codes",
    }
    error(again, 404, 20404)
    error(twilio.fetch(sid), 404, 20404)
    error(twilio.update(sid, Status="canceled"), 404, 20404)


def test_a_check_names_the_verification_by_its_sid(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]

    assert twilio.check(twilio.code(), VerificationSid=sid).body["status"] == "approved"


def test_a_wrong_code_is_pending_and_the_last_one_reaches_max_attempts(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]
    code = twilio.code()

    answers = [twilio.check(wrong(code), VerificationSid=sid) for _ in range(5)]
    after = twilio.check(code, VerificationSid=sid)

    assert [answer.status for answer in answers] == [200] * 5
    assert [answer.body["status"] for answer in answers] == ["pending"] * 4 + ["max_attempts_reached"]
    assert not any(answer.body["valid"] for answer in answers)
    # The right code after the last attempt is Twilio's 60202, and the verification shows why
    assert "Max check attempts reached" in error(after, 429, 60202)
    assert twilio.fetch(sid).body["status"] == "max_attempts_reached"
    error(twilio.update(sid, Status="canceled"), 404, 20404)


def test_the_lockout_of_the_number_is_max_check_attempts(make_twilio: Any) -> None:
    twilio = make_twilio(lockout_threshold=2)
    first = twilio.create().body["sid"]
    twilio.check(wrong(twilio.code()), VerificationSid=first)
    twilio.check(wrong(twilio.code()), VerificationSid=first)

    locked = twilio.check(twilio.code(), VerificationSid=first)

    error(locked, 429, 60202)
    assert int(locked.headers["Retry-After"]) > 0


def test_an_expired_verification_is_gone(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]
    code = twilio.code()
    twilio.world.clock.advance(600)

    error(twilio.check(code, VerificationSid=sid), 404, 20404)
    error(twilio.check(code, To=PHONE), 404, 20404)
    error(twilio.fetch(sid), 404, 20404)


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({}, 400, 60200),
        ({"To": "4155552671"}, 400, 60200),
        ({"VerificationSid": "VEnot-a-sid"}, 404, 20404),
        ({"VerificationSid": "VE" + "f" * 32}, 404, 20404),
        ({"To": OTHER}, 404, 20404),
    ],
)
def test_a_check_without_a_known_verification(twilio: Twilio, form: dict[str, str], status: int, code: int) -> None:
    twilio.create()

    error(twilio.check(twilio.code(), **form), status, code)


def test_a_check_whose_to_is_not_the_verifications_number_finds_nothing(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]

    error(twilio.check(twilio.code(), VerificationSid=sid, To=OTHER), 404, 20404)
    assert twilio.check(twilio.code(), VerificationSid=sid, To=PHONE).body["status"] == "approved"


@pytest.mark.parametrize("code", ["12a456", "123", "12345678901", ""])
def test_a_code_that_is_not_4_to_10_digits_is_an_invalid_parameter(twilio: Twilio, code: str) -> None:
    twilio.create()

    assert error(twilio.check(code, To=PHONE), 400, 60200).startswith("Invalid parameter: Code")


def test_a_code_of_another_length_than_the_apps_is_an_invalid_parameter_and_costs_no_attempt(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]

    assert error(twilio.check("1234", VerificationSid=sid), 400, 60200).startswith("Invalid parameter: Code")
    assert twilio.world.repository.challenges[str(uuid.UUID(sid[2:]))].attempts == 0


def test_a_native_challenge_is_no_twilio_verification(twilio: Twilio) -> None:
    # Given a challenge of the same app made by the native API
    sent, challenge = twilio.world.service.start(PHONE, "signIn")
    sid = verification_sid(challenge.challenge_id)

    # Then the facade knows nothing of it, and its code stays usable natively
    error(twilio.fetch(sid), 404, 20404)
    error(twilio.check(twilio.code(), VerificationSid=sid), 404, 20404)
    error(twilio.update(sid, Status="canceled"), 404, 20404)
    assert twilio.world.service.verify(sent.challenge_id, twilio.code()).is_verified


def test_a_test_number_takes_its_fixed_code_and_reaches_no_provider(make_twilio: Any) -> None:
    twilio = make_twilio(test_numbers='[{"phoneNumber": "+14155550100", "code": "246813"}]')

    sent = twilio.create("+14155550100")
    wrong_code = twilio.check("135792", To="+14155550100")
    right = twilio.check("246813", To="+14155550100")

    assert sent.status == 201
    assert twilio.world.sender.sent == [] and len(twilio.world.test_sender.sent) == 1
    assert wrong_code.body["status"] == "pending"
    assert right.body["status"] == "approved"


# --------------------------------------------------------------------------------------- fetch and update


def test_fetch_by_sid_or_by_number_shows_the_pending_verification(twilio: Twilio) -> None:
    created = twilio.create().body

    by_sid = twilio.fetch(created["sid"])
    by_number = twilio.fetch("%2B14155552671")

    assert by_sid.status == by_number.status == 200
    assert by_sid.body == by_number.body
    assert by_sid.body["sid"] == created["sid"] and by_sid.body["status"] == "pending"


@pytest.mark.parametrize("sid", ["VE" + "0" * 32, "VE123", "not-a-sid", "%FF", "+14155550000", "VA" + HEX])
def test_fetch_of_anything_else_is_not_found(twilio: Twilio, sid: str) -> None:
    twilio.create()

    error(twilio.fetch(sid), 404, 20404)


def test_cancel_makes_the_code_unusable_at_once_and_the_verification_is_gone(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]
    code = twilio.code()
    challenge_id = str(uuid.UUID(sid[2:]))

    canceled = twilio.update(sid, Status="canceled")

    assert canceled.status == 200
    assert (canceled.body["sid"], canceled.body["status"], canceled.body["valid"]) == (sid, "canceled", False)
    error(twilio.fetch(sid), 404, 20404)
    error(twilio.check(code, VerificationSid=sid), 404, 20404)
    error(twilio.update(sid, Status="canceled"), 404, 20404)
    # And natively too: the code verifies nowhere, and the challenge reads as expired
    assert twilio.world.service.verify(challenge_id, code).failure_reason == "CODE_INVALID_OR_EXPIRED"
    assert twilio.world.service.get(challenge_id).state == "EXPIRED"
    # And the number's next create starts a new verification, with a new code's SMS (its sends stay counted)
    twilio.world.clock.advance(30)
    renewed = twilio.create()
    assert renewed.status == 201 and renewed.body["sid"] != sid


def test_cancel_by_number(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]

    assert twilio.update("+14155552671", Status="canceled").body["sid"] == sid


def test_approving_without_a_code_is_refused_with_the_reason(twilio: Twilio) -> None:
    sid = twilio.create().body["sid"]

    message = error(twilio.update(sid, Status="approved"), 400, 60200)

    assert "approving without a code would skip the verification" in message
    assert twilio.fetch(sid).body["status"] == "pending"


@pytest.mark.parametrize("form", [{}, {"Status": "pending"}, {"Status": "expired"}])
def test_any_other_status_is_an_invalid_parameter(twilio: Twilio, form: dict[str, str]) -> None:
    sid = twilio.create().body["sid"]

    assert error(twilio.update(sid, **form), 400, 60200).startswith("Invalid parameter: Status")


# ----------------------------------------------------------------------------------- the core's other errors


def test_the_cores_number_and_country_errors_are_twilios(make_twilio: Any) -> None:
    twilio = make_twilio(blocked_countries="FR")

    assert error(twilio.create("+33612345678"), 403, 60605)
    assert error(twilio.create("+442071838750"), 403, 60205)
    assert error(twilio.create("+10005550100"), 400, 60200).startswith("Invalid parameter: To")


def test_a_fraud_guard_block_is_60410_and_nothing_is_sent(twilio: Twilio) -> None:
    now = twilio.world.clock.now()
    twilio.world.fraud.put_block(Block("*", parse_bucket("country:US"), Reason.MANUAL, now, None))

    assert "blocked" in error(twilio.create(), 403, 60410)
    assert twilio.world.sender.sent == []


def test_a_spent_budget_is_max_send_attempts(make_twilio: Any) -> None:
    twilio = make_twilio(sms_budget_per_hour=1)
    assert twilio.create().status == 201

    error(twilio.create(OTHER), 429, 60203)


def test_a_delivery_failure_is_twilios_carrier_error_and_is_not_charged(twilio: Twilio) -> None:
    twilio.world.sender.fail = True
    failed = twilio.create()
    twilio.world.sender.fail = False

    assert "could not be sent" in error(failed, 502, 60005)
    assert twilio.world.repository.challenges == {}
    assert twilio.create().status == 201


@pytest.mark.parametrize(
    ("core", "status", "code"),
    [
        (InvalidRequestError("bad"), 400, 60200),
        (InvalidPhoneNumberError("bad"), 400, 60200),
        (InvalidMessageTemplateError("bad"), 400, 60200),
        (UnsupportedCountryError("no"), 403, 60605),
        (UnsupportedNumberTypeError("no"), 403, 60205),
        (RateLimitedError("slow down", retry_after=7), 429, 60203),
        (SendBudgetExceededError("spent", retry_after=7), 429, 60203),
        (DestinationBlockedError("prefix"), 403, 60410),
        (DeliveryFailedError("down"), 502, 60005),
        (ConflictError("raced"), 429, 60212),
        (NotFoundError("none"), 404, 20404),
        (UnauthorizedError("who"), 401, 20003),
        (DependencyError("down"), 503, 20503),
        (OtpError("?"), 500, 20500),
    ],
)
def test_every_core_error_has_its_twilio_code(core: OtpError, status: int, code: int) -> None:
    answer = twilio_error(core).answer()

    error(answer, status, code)
    if isinstance(core, RateLimitedError):
        assert answer.headers["Retry-After"] == "7"


def test_a_check_that_is_rate_limited_is_max_check_attempts() -> None:
    error(twilio_error(RateLimitedError("locked", retry_after=60), checking=True).answer(), 429, 60202)


def test_an_unforeseen_failure_is_a_500_that_reveals_nothing() -> None:
    def boom() -> TwilioAnswer:
        raise RuntimeError("secret detail +14155552671")

    answer = serve(boom)

    assert error(answer, 500, 20500) == "Internal Server Error"


def test_send_times_know_the_first_and_the_latest_send(twilio: Twilio) -> None:
    twilio.create()
    twilio.world.clock.advance(30)
    twilio.create()
    twilio.world.clock.advance(60)
    twilio.create()
    (challenge,) = twilio.world.repository.challenges.values()

    times = send_times(challenge, 30, twilio.world.clock.now())

    assert times == [challenge.created_at, None, challenge.created_at + 90]


# ----------------------------------------------------------------------------------- the core's cancel


def test_records_cancel_only_a_pending_challenge(world: Any) -> None:
    _, pending = world.service.start(PHONE, "signIn")
    _, verified = world.service.start(OTHER, "signIn")
    world.service.verify(verified.challenge_id, world.sender.last_code())

    cancelled = world.records.cancel(pending.challenge_id)

    assert cancelled is not None and cancelled.state is ChallengeState.EXPIRED
    assert cancelled.expires_at == world.clock.now()
    assert world.records.cancel(pending.challenge_id) is None
    assert world.records.cancel(verified.challenge_id) is None
    assert world.records.cancel("not-an-id") is None
    assert world.records.cancel(str(uuid.uuid4())) is None


def test_records_cancel_leaves_an_exhausted_or_expired_challenge_alone(make_world: Any) -> None:
    world = make_world(max_attempts=1)
    _, exhausted = world.service.start(PHONE, "signIn")
    world.service.verify(exhausted.challenge_id, wrong(world.sender.last_code()))
    _, expired = world.service.start(OTHER, "signIn")
    world.clock.advance(600)

    assert world.records.cancel(exhausted.challenge_id) is None
    assert world.records.cancel(expired.challenge_id) is None
    assert world.service.get(exhausted.challenge_id).state == "FAILED"


# ------------------------------------------------------------------------------------------- the form


def test_a_form_is_read_as_twilio_python_sends_it() -> None:
    form = parse_form("To=%2B14155552671&Channel=sms&CustomFriendlyName=Acme+Bank&Empty=", FORM_TYPE)

    assert form == {"To": "+14155552671", "Channel": "sms", "CustomFriendlyName": "Acme Bank", "Empty": ""}
    assert parse_form(None, None) == {} and parse_form("", FORM_TYPE) == {}
    assert parse_form("Status=canceled", "application/x-www-form-urlencoded; charset=utf-8") == {"Status": "canceled"}


FORM_TYPE = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type", "named"),
    [
        ("To=%2B1&To=%2B2", FORM_TYPE, "To"),
        ("Secret=1&Secret=2", FORM_TYPE, "body"),
        ("To=%FF%FE", FORM_TYPE, "body"),
        ("To=1&&Channel=sms", FORM_TYPE, "body"),
        ("To", FORM_TYPE, "body"),
        ("&".join(f"F{n}=1" for n in range(100)), FORM_TYPE, "body"),
        ('{"To": "+14155552671"}', "application/json", "Content-Type"),
    ],
)
def test_a_malformed_form_is_an_invalid_parameter_that_quotes_nothing(body: str, content_type: str, named: str) -> None:
    with pytest.raises(TwilioError) as refused:
        parse_form(body, content_type)

    answer = refused.value.answer()
    assert error(answer, 400, 60200).startswith(f"Invalid parameter: {named}")
    assert "Secret" not in answer.body["message"] and "FF" not in answer.body["message"]


# ---------------------------------------------------------------------------------------- credentials


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Keys:
    """What KeyAuthority.identify answers: the admin marker, a grant, or None."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, secret: str) -> object:
        self.asked.append(secret)
        return {"sk_shop": KeyGrant("shop", "key_1"), "sk_other": KeyGrant("other", "key_2"), "admin": "admin"}.get(
            secret
        )


def _credentials(keys: Keys, deleted: frozenset[str] = frozenset()) -> TwilioCredentials:
    sids = {HEX: "shop", "f" * 32: "other"}

    def policy(app_id: str) -> Any:
        if app_id in deleted:
            raise UnauthorizedError("the API key is not valid")
        return Settings().policy

    return TwilioCredentials(sids.get, keys, policy)


def test_the_apps_account_sid_and_key_open_its_service() -> None:
    caller = _credentials(Keys()).authenticate(_basic(f"AC{HEX}", "sk_shop"), f"VA{HEX}", "https://api.example")

    assert caller.app_id == "shop"
    assert caller.service == Service(f"VA{HEX}", f"AC{HEX}", f"https://api.example/twilio/v2/Services/VA{HEX}")


@pytest.mark.parametrize(
    ("authorization", "service_sid"),
    [
        (None, f"VA{HEX}"),
        ("", f"VA{HEX}"),
        ("Bearer sk_shop", f"VA{HEX}"),
        ("Basic not-base64!", f"VA{HEX}"),
        ("Basic " + base64.b64encode(b"no colon").decode(), f"VA{HEX}"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), f"VA{HEX}"),
        (_basic(f"AC{HEX}", ""), f"VA{HEX}"),
        (_basic(f"AC{HEX}", "sk_wrong"), f"VA{HEX}"),
        (_basic(f"AC{HEX}", "admin"), f"VA{HEX}"),
        (_basic(f"AC{HEX}", "sk_other"), f"VA{HEX}"),
        (_basic("AC" + "f" * 32, "sk_shop"), f"VA{HEX}"),
        (_basic("AC" + "f" * 32, "sk_other"), f"VA{HEX}"),
        (_basic(f"AC{HEX}", "sk_other"), "VA" + "f" * 32),
        (_basic(f"AC{HEX.upper()}", "sk_shop"), f"VA{HEX}"),
        (_basic(f"VA{HEX}", "sk_shop"), f"VA{HEX}"),
        (_basic(f"AC{HEX}", "sk_shop"), f"AC{HEX}"),
        (_basic(f"AC{HEX}", "sk_shop"), "VA" + "e" * 32),
        (_basic(f"AC{HEX}", "sk_shop"), "VAshort"),
    ],
)
def test_every_wrong_credential_is_the_same_401(authorization: str | None, service_sid: str) -> None:
    with pytest.raises(TwilioError) as refused:
        _credentials(Keys()).authenticate(authorization, service_sid, "")

    answer = refused.value.answer()
    assert error(answer, 401, 20003) == "Authenticate"
    assert answer.headers == {"WWW-Authenticate": 'Basic realm="Twilio API"'}


def test_a_deleted_apps_key_is_the_same_401() -> None:
    with pytest.raises(TwilioError) as refused:
        _credentials(Keys(), deleted=frozenset({"shop"})).authenticate(_basic(f"AC{HEX}", "sk_shop"), f"VA{HEX}", "")

    assert refused.value.code == 20003


def test_the_key_is_looked_up_whatever_the_sids_say() -> None:
    keys = Keys()
    with pytest.raises(TwilioError):
        _credentials(keys).authenticate(_basic("AC" + "f" * 32, "sk_shop"), f"VA{HEX}", "")

    assert keys.asked == ["sk_shop"]


def test_basic_credentials_read_the_header_as_http_basic_defines_it() -> None:
    assert basic_credentials(_basic("user", "pa:ss")) == ("user", "pa:ss")
    assert basic_credentials("basic " + base64.b64encode(b"u:p").decode()) == ("u", "p")
    assert basic_credentials("Basic") is None


def test_the_fake_clock_is_the_facades_clock(twilio: Twilio) -> None:
    # The facade reads time only through the core (its records' clock), as every use case does
    assert isinstance(twilio.world.clock, FakeClock)
    created = twilio.create().body
    twilio.world.clock.advance(45)

    assert twilio.fetch(created["sid"]).body["date_created"] == created["date_created"]
