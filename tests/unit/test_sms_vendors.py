"""Every vendor adapter against its local fake on 127.0.0.1: the exact request, the replies, the timeouts."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from local.vendors.servers import FakeVendor, running
from otp_core.errors import DeliveryFailedError, InvalidPhoneNumberError
from otp_core.records import OutgoingSms
from otp_core.sms.routing import FailoverSender
from otp_core.sms.vendor import ProviderError, VendorConfig, VendorSender
from otp_core.sms.vendors import KNOWN_PROVIDERS, callback_class, sender_class
from otp_core.sms.vendors.vonage import is_gsm7
from otp_core.sms.vendors.webhook import verify_webhook
from otp_core.timefmt import rfc3339
from tests.fakes import FakeClock, MemoryCircuitStore

CHALLENGE_ID = "3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b"
NZ = "+64211234567"
US = "+14155552671"
BODY = "123456 is your SMS OTP code. It expires in 10 minutes."
SECRET: dict[str, dict[str, str]] = {
    "twilio": {"accountSid": "AC" + "0" * 32, "authToken": "twilio-token", "from": "+15017122661"},
    "bird": {"accessKey": "bird-access-key", "workspaceId": "ws-1", "channelId": "ch-1"},
    "messagemedia": {"apiKey": "mm-key", "apiSecret": "mm-secret", "sourceNumber": "+61491570157"},
    "tnz": {"authToken": "eyJ0eXAi.tnz.token", "fromNumber": "+6495005000"},
    "modica": {"applicationName": "otp-app", "password": "modica-pass"},
    "vonage": {"apiKey": "vonage-key", "apiSecret": "vonage-secret", "from": "+447700900001"},
    "webhook": {"url": "https://hooks.example.com/sms", "secret": "webhook-shared-secret"},
}
VENDORS = tuple(SECRET)


@pytest.fixture(autouse=True)
def _loopback_only(_no_network: None) -> None:
    # The fakes listen on 127.0.0.1; every other address stays blocked (pytest-socket resets this afterwards).
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeVendor]]:
    with running(*VENDORS) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _fresh(fakes: dict[str, FakeVendor]) -> None:
    for fake in fakes.values():
        fake.reset()


def sms(to: str = NZ, sender_id: str | None = None, body: str = BODY) -> OutgoingSms:
    return OutgoingSms(to=to, body=body, sender_id=sender_id, challenge_id=CHALLENGE_ID)


def adapter(
    name: str,
    fake: FakeVendor,
    *,
    secret: Mapping[str, Any] | None = None,
    callback_base_url: str = "",
    clock: FakeClock | None = None,
) -> VendorSender:
    config = VendorConfig(
        load_credentials=lambda: SECRET if secret is None else secret,
        timeout=2.0,
        base_url=fake.url,
        callback_base_url=callback_base_url,
        clock=clock or FakeClock(),
    )
    return sender_class(name)(config)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------------------------------------- every vendor


def test_the_vendor_package_is_the_registry() -> None:
    # Given the modules of otp_core.sms.vendors, a provider's name is its module's name (SNS and End User
    # Messaging are AWS clients of the function's role, the others HTTP vendors of the provider secret)
    assert {"sns", "eum", *VENDORS} == KNOWN_PROVIDERS

    # Then each HTTP vendor's module names its sender, whose name is the provider's
    for name in VENDORS:
        assert issubclass(sender_class(name), VendorSender)
        assert sender_class(name).name == name
    # And only the vendors with documented, signed HTTP status callbacks have a reader (End User Messaging's
    # receipts come through its SNS topic, otp_core.sms.sns_events)
    assert {name for name in KNOWN_PROVIDERS if callback_class(name)} == {"twilio", "webhook", "vonage", "messagemedia"}
    assert callback_class("eum") is None


@pytest.mark.parametrize("name", ["__init__", "os", "vendor", "twilio.x", "../twilio", "Twilio", ""])
def test_a_name_outside_the_package_imports_nothing(name: str) -> None:
    # A callback path segment is caller input: it is looked up in the listed names, never imported as given
    assert callback_class(name) is None
    with pytest.raises(KeyError):
        sender_class(name)


@pytest.mark.parametrize("name", VENDORS)
def test_a_5xx_is_a_provider_failure_that_fails_over(name: str, fakes: dict[str, FakeVendor]) -> None:
    # Given the vendor answering 5xx
    fakes[name].mode = "fail"

    # When sending
    with pytest.raises(ProviderError) as caught:
        adapter(name, fakes[name]).send(sms())

    # Then it is an unambiguous provider failure (a DeliveryFailedError, so a lone adapter still refunds)
    assert caught.value.reason == "http_5xx"
    assert not caught.value.ambiguous
    assert isinstance(caught.value, DeliveryFailedError)
    assert len(fakes[name].requests) == 1


@pytest.mark.parametrize("name", VENDORS)
def test_a_documented_bad_number_reply_is_an_invalid_phone_number(name: str, fakes: dict[str, FakeVendor]) -> None:
    # Given the vendor's documented "invalid number" reply
    fakes[name].mode = "bad_number"

    # When sending, then the caller gets INVALID_PHONE_NUMBER, not a provider failure
    with pytest.raises(InvalidPhoneNumberError) as caught:
        adapter(name, fakes[name]).send(sms())
    assert not isinstance(caught.value, DeliveryFailedError)
    assert caught.value.status == 400


@pytest.mark.parametrize("name", VENDORS)
def test_a_reply_slower_than_the_timeout_is_an_ambiguous_failure(name: str, fakes: dict[str, FakeVendor]) -> None:
    # Given a vendor that answers after 1 s
    fakes[name].mode, fakes[name].delay = "slow", 1.0

    # When sending with a 0.2 s timeout
    with pytest.raises(ProviderError) as caught:
        adapter(name, fakes[name]).send_within(sms(), 0.2)

    # Then the request went out but no answer came: a timeout that may have delivered
    assert caught.value.reason == "timeout"
    assert caught.value.ambiguous
    assert len(fakes[name].requests) == 1


@pytest.mark.parametrize("name", VENDORS)
def test_a_dropped_connection_is_ambiguous(name: str, fakes: dict[str, FakeVendor]) -> None:
    fakes[name].mode = "drop"
    with pytest.raises(ProviderError) as caught:
        adapter(name, fakes[name]).send(sms())
    assert caught.value.reason == "dropped"
    assert caught.value.ambiguous


@pytest.mark.parametrize("name", VENDORS)
def test_a_refused_connection_cannot_have_delivered(name: str) -> None:
    # Given a fake that is no longer listening
    fake = FakeVendor(name).start()
    url = fake.url
    fake.stop()
    config = VendorConfig(load_credentials=lambda: SECRET, base_url=url, timeout=1.0, clock=FakeClock())

    # When sending, then it is an unambiguous connect failure
    with pytest.raises(ProviderError) as caught:
        sender_class(name)(config).send(sms())
    assert caught.value.reason == "connect"
    assert not caught.value.ambiguous


@pytest.mark.parametrize("name", VENDORS)
def test_missing_credentials_are_a_configuration_failure_without_a_request(
    name: str, fakes: dict[str, FakeVendor]
) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter(name, fakes[name], secret={"other": {}}).send(sms())
    assert caught.value.reason == "config"
    assert fakes[name].requests == []


@pytest.mark.parametrize("name", VENDORS)
def test_an_unreadable_secret_is_a_configuration_failure(name: str, fakes: dict[str, FakeVendor]) -> None:
    def broken() -> Mapping[str, Any]:
        raise RuntimeError("secrets manager down")

    config = VendorConfig(load_credentials=broken, base_url=fakes[name].url, clock=FakeClock())
    with pytest.raises(ProviderError) as caught:
        sender_class(name)(config).send(sms())
    assert caught.value.reason == "config"


@pytest.mark.parametrize("name", VENDORS)
def test_plain_http_is_refused_outside_loopback(name: str) -> None:
    # Given an endpoint override to a non-loopback http URL (credentials would travel in clear text)
    config = VendorConfig(load_credentials=lambda: SECRET, base_url="http://198.51.100.7:8080", clock=FakeClock())

    # When sending, then nothing is sent and the provider is misconfigured
    with pytest.raises(ProviderError) as caught:
        sender_class(name)(config).send(sms())
    assert caught.value.reason == "config"


# ---------------------------------------------------------------------------------------------- Twilio


def test_twilio_conversion_feedback_confirms_the_message(fakes: dict[str, FakeVendor]) -> None:
    from otp_core.sms.vendors.twilio import TwilioSender

    sender = adapter("twilio", fakes["twilio"])
    assert isinstance(sender, TwilioSender)
    sid = "SM" + "1f0e8ae6ade43cb3c0ce4525424e404f"

    # When a verified message is confirmed: one form POST to its Feedback resource, Outcome=confirmed
    assert sender.feedback(sid) is True
    request = fakes["twilio"].last
    assert request.route == f"/2010-04-01/Accounts/AC{'0' * 32}/Messages/{sid}/Feedback.json"
    assert request.form() == {"Outcome": ["confirmed"]}
    assert request.headers["authorization"] == basic("AC" + "0" * 32, "twilio-token")

    # And a refusal, an outage or an ID that is no Message SID is False, never an exception (no request for the last)
    for mode in ("fail", "auth", "drop"):
        fakes["twilio"].mode = mode
        assert sender.feedback(sid) is False
    fakes["twilio"].reset()
    assert sender.feedback("../../Calls/CA1") is False
    assert fakes["twilio"].requests == []


def test_twilio_request_is_the_documented_create_message(fakes: dict[str, FakeVendor]) -> None:
    # When sending to NZ with an alphanumeric sender ID and a callback base URL
    sent = adapter("twilio", fakes["twilio"], callback_base_url="https://api.example.com/api/").send(
        sms(sender_id="MyBrand")
    )

    # Then one form-encoded POST to the account's Messages.json with Basic auth
    request = fakes["twilio"].last
    assert request.method == "POST"
    assert request.route == f"/2010-04-01/Accounts/AC{'0' * 32}/Messages.json"
    assert request.headers["authorization"] == basic("AC" + "0" * 32, "twilio-token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": [NZ],
        "Body": [BODY],
        "From": ["MyBrand"],
        # The challenge and its send ride in the signed callback URL (nothing is recorded at send)
        "StatusCallback": [f"https://api.example.com/api/v1/delivery-status/twilio?challengeId={CHALLENGE_ID}&send=0"],
        # So that a verify can confirm the message (conversion feedback)
        "ProvideFeedback": ["true"],
    }
    # And the message SID is the message ID
    assert sent.provider == "twilio"
    assert sent.message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"


def test_twilio_uses_the_configured_number_towards_plus_one_and_the_messaging_service(
    fakes: dict[str, FakeVendor],
) -> None:
    # Given a secret with a Messaging Service as well as a number
    secret = {"twilio": {**SECRET["twilio"], "messagingServiceSid": "MG" + "1" * 32}}

    # When sending to a US number with an alphanumeric sender ID
    adapter("twilio", fakes["twilio"], secret=secret).send(sms(to=US, sender_id="MyBrand"))

    # Then the alphanumeric sender is not used (+1 carriers refuse it) and no callback is asked for
    form = fakes["twilio"].last.form()
    assert form["From"] == ["+15017122661"]
    assert form["MessagingServiceSid"] == ["MG" + "1" * 32]
    assert "StatusCallback" not in form


def test_twilio_needs_a_sender_or_a_messaging_service(fakes: dict[str, FakeVendor]) -> None:
    secret = {"twilio": {"accountSid": "AC1", "authToken": "t"}}
    with pytest.raises(ProviderError) as caught:
        adapter("twilio", fakes["twilio"], secret=secret).send(sms(to=US))
    assert caught.value.reason == "config"


@pytest.mark.parametrize("mode", ["not_mobile", "opted_out"])
def test_twilio_final_destination_errors_are_bad_numbers(mode: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["twilio"].mode = mode
    with pytest.raises(InvalidPhoneNumberError):
        adapter("twilio", fakes["twilio"]).send(sms())


@pytest.mark.parametrize(("mode", "reason"), [("auth", "auth"), ("throttled", "throttled"), ("bad_sender", "rejected")])
def test_twilio_account_errors_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    # Given an account-level refusal (including a bad configured 'From': no sender ID in the request)
    fakes["twilio"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("twilio", fakes["twilio"]).send(sms())
    # Then it is this provider's failure, counted against its circuit
    assert caught.value.reason == reason
    assert caught.value.counts_against_circuit


@pytest.mark.parametrize(
    ("mode", "sender_id", "reason"),
    [
        ("bad_sender", "MyBrand", "rejected_content"),  # 21212: the request's sender ID
        ("unreachable", "MyBrand", "rejected_content"),  # 21612 with an alphanumeric From
        ("too_long", None, "rejected_content"),  # 21617: the text
        ("region", None, "rejected_destination"),  # 21408: a country this account may not send to
    ],
)
def test_twilio_refusals_of_the_request_fail_over_without_counting(
    mode: str, sender_id: str | None, reason: str, fakes: dict[str, FakeVendor]
) -> None:
    # Given Twilio refusing what this request asked for
    fakes["twilio"].mode = mode

    # When sending to NZ (where the request's alphanumeric sender ID is used)
    with pytest.raises(ProviderError) as caught:
        adapter("twilio", fakes["twilio"]).send(sms(sender_id=sender_id))

    # Then it fails over, but says the provider is not to blame
    assert caught.value.reason == reason
    assert not caught.value.counts_against_circuit


def test_twilio_unreachable_without_a_request_sender_is_still_a_bad_number(fakes: dict[str, FakeVendor]) -> None:
    # Given 21612 for a message sent from the configured number (no sender ID: towards +1)
    fakes["twilio"].mode = "unreachable"
    # Then the number is the problem, as before
    with pytest.raises(InvalidPhoneNumberError):
        adapter("twilio", fakes["twilio"]).send(sms(to=US, sender_id="MyBrand"))


# ---------------------------------------------------------------------------------------------- Bird


def test_bird_request_is_the_documented_channel_message(fakes: dict[str, FakeVendor]) -> None:
    sent = adapter("bird", fakes["bird"]).send(sms(sender_id="MyBrand"))

    request = fakes["bird"].last
    assert request.route == "/workspaces/ws-1/channels/ch-1/messages"
    assert request.headers["authorization"] == "AccessKey bird-access-key"
    assert request.headers["content-type"] == "application/json"
    # The channel owns the sender: the request's sender ID is not part of the message
    assert request.json() == {
        "receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": NZ}]},
        "body": {"type": "text", "text": {"text": BODY}},
        "reference": CHALLENGE_ID,
    }
    assert sent.message_id == "7f6dc9a0-4a63-4e4f-8a6a-bb9a2d0e8f11"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("invalid_body", "rejected_content"), ("auth", "auth"), ("not_found", "rejected"), ("throttled", "throttled")],
)
def test_bird_other_errors_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["bird"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("bird", fakes["bird"]).send(sms())
    assert caught.value.reason == reason
    # Only a refusal of the text (the body) is the request's doing
    assert caught.value.counts_against_circuit is (reason != "rejected_content")


# ---------------------------------------------------------------------------------------------- MessageMedia


def test_messagemedia_request_is_the_documented_send_messages(fakes: dict[str, FakeVendor]) -> None:
    sent = adapter("messagemedia", fakes["messagemedia"]).send(sms(sender_id="MyBrand"))

    request = fakes["messagemedia"].last
    assert request.route == "/v1/messages"
    assert request.headers["authorization"] == basic("mm-key", "mm-secret")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "messages": [
            {
                "content": BODY,
                "destination_number": NZ,
                "format": "SMS",
                "source_number": "MyBrand",
                "source_number_type": "ALPHANUMERIC",
            }
        ]
    }
    assert sent.message_id == "04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"


def test_messagemedia_falls_back_to_the_configured_number(fakes: dict[str, FakeVendor]) -> None:
    adapter("messagemedia", fakes["messagemedia"]).send(sms(to=US, sender_id="MyBrand"))
    message = fakes["messagemedia"].last.json()["messages"][0]
    assert (message["source_number"], message["source_number_type"]) == ("+61491570157", "INTERNATIONAL")


@pytest.mark.parametrize(("mode", "reason"), [("bad_source", "rejected"), ("auth", "auth"), ("disabled", "auth")])
def test_messagemedia_other_errors_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["messagemedia"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("messagemedia", fakes["messagemedia"]).send(sms())
    assert caught.value.reason == reason
    assert caught.value.counts_against_circuit


@pytest.mark.parametrize(("mode", "sender_id"), [("bad_source", "MyBrand"), ("bad_content", None)])
def test_messagemedia_refusing_the_request_sender_or_text_does_not_count(
    mode: str, sender_id: str | None, fakes: dict[str, FakeVendor]
) -> None:
    fakes["messagemedia"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("messagemedia", fakes["messagemedia"]).send(sms(sender_id=sender_id))
    assert caught.value.reason == "rejected_content"
    assert not caught.value.counts_against_circuit


# ---------------------------------------------------------------------------------------------- TNZ


def test_tnz_request_is_the_documented_send_sms(fakes: dict[str, FakeVendor]) -> None:
    sent = adapter("tnz", fakes["tnz"]).send(sms(sender_id="MyBrand"))

    request = fakes["tnz"].last
    assert request.route == "/api/v2.04/send/sms"
    # The dashboard's auth token goes in as is, after "Basic"
    assert request.headers["authorization"] == "Basic eyJ0eXAi.tnz.token"
    assert request.headers["content-type"] == "application/json; encoding='utf-8'"
    assert request.json() == {
        "MessageData": {
            "Message": BODY,
            "Destinations": [{"Recipient": NZ}],
            "Reference": CHALLENGE_ID,
            "FromNumber": "MyBrand",
        }
    }
    assert sent.message_id == "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"


@pytest.mark.parametrize(("mode", "reason"), [("auth", "auth"), ("missing_data", "rejected")])
def test_tnz_other_errors_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["tnz"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("tnz", fakes["tnz"]).send(sms())
    assert caught.value.reason == reason


# ---------------------------------------------------------------------------------------------- Modica


def test_modica_request_is_the_documented_gateway_message(fakes: dict[str, FakeVendor]) -> None:
    sent = adapter("modica", fakes["modica"]).send(sms(sender_id="MyBrand"))

    request = fakes["modica"].last
    assert request.route == "/rest/gateway/messages"
    assert request.headers["authorization"] == basic("otp-app", "modica-pass")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/vnd.modica.gateway.v1+json"
    assert request.json() == {"destination": NZ, "content": BODY, "reference": CHALLENGE_ID, "mask": "MyBrand"}
    assert sent.message_id == "4711"


@pytest.mark.parametrize(("mode", "reason"), [("bad_mask", "rejected"), ("missing", "rejected"), ("auth", "auth")])
def test_modica_other_errors_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["modica"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("modica", fakes["modica"]).send(sms())
    assert caught.value.reason == reason
    assert caught.value.counts_against_circuit


@pytest.mark.parametrize(("mode", "sender_id"), [("bad_mask", "MyBrand"), ("bad_content", None)])
def test_modica_refusing_the_request_mask_or_text_does_not_count(
    mode: str, sender_id: str | None, fakes: dict[str, FakeVendor]
) -> None:
    fakes["modica"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("modica", fakes["modica"]).send(sms(sender_id=sender_id))
    assert caught.value.reason == "rejected_content"
    assert not caught.value.counts_against_circuit


@pytest.mark.parametrize(("answer", "expected"), [([4711], "4711"), (4711, "4711"), ({"id": 9}, "9"), ({}, None)])
def test_modica_message_id_shapes(answer: Any, expected: str | None) -> None:
    from otp_core.sms.vendors.modica import _message_id

    assert _message_id(answer) == expected


# ---------------------------------------------------------------------------------------------- Vonage


def test_vonage_request_is_the_documented_sms_json(fakes: dict[str, FakeVendor]) -> None:
    sent = adapter("vonage", fakes["vonage"]).send(sms(sender_id="MyBrand"))

    request = fakes["vonage"].last
    assert request.route == "/sms/json"
    assert request.headers["authorization"] == basic("vonage-key", "vonage-secret")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    # E.164 digits without "+", the challenge as client reference, plain text needs no type
    assert request.form() == {"from": ["MyBrand"], "to": [NZ[1:]], "text": [BODY], "client-ref": [CHALLENGE_ID]}
    assert sent.message_id == "0A0000000123ABCD1"


def test_vonage_sends_non_gsm_text_as_unicode(fakes: dict[str, FakeVendor]) -> None:
    adapter("vonage", fakes["vonage"]).send(sms(to=US, body="123456 是您的验证码"))
    form = fakes["vonage"].last.form()
    assert form["type"] == ["unicode"]
    assert form["from"] == ["447700900001"]


@pytest.mark.parametrize("mode", ["barred", "deactivated"])
def test_vonage_final_number_statuses_are_bad_numbers(mode: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["vonage"].mode = mode
    with pytest.raises(InvalidPhoneNumberError):
        adapter("vonage", fakes["vonage"]).send(sms())


@pytest.mark.parametrize(("mode", "reason"), [("throttled", "throttled"), ("auth", "status_4"), ("demo", "status_29")])
def test_vonage_error_statuses_in_a_200_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    fakes["vonage"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("vonage", fakes["vonage"]).send(sms())
    assert caught.value.reason == reason
    assert caught.value.counts_against_circuit


@pytest.mark.parametrize(
    ("mode", "sender_id", "reason", "counts"),
    [
        ("bad_sender", "MyBrand", "rejected_content", False),  # 15 for the request's sender ID
        ("bad_sender", None, "status_15", True),  # 15 for the configured sender: misconfigured
        ("too_long", None, "rejected_content", False),  # 12: the text
    ],
)
def test_vonage_sender_and_text_refusals(
    mode: str, sender_id: str | None, reason: str, counts: bool, fakes: dict[str, FakeVendor]
) -> None:
    fakes["vonage"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("vonage", fakes["vonage"]).send(sms(sender_id=sender_id))
    assert (caught.value.reason, caught.value.counts_against_circuit) == (reason, counts)


def test_gsm7_detection() -> None:
    assert is_gsm7("Your code is 123456 [ok] €5")
    assert not is_gsm7("Код 123456")


# ---------------------------------------------------------------------------------------------- webhook


def test_webhook_request_is_signed_json(fakes: dict[str, FakeVendor]) -> None:
    clock = FakeClock(1_795_299_000)

    sent = adapter("webhook", fakes["webhook"], clock=clock).send(sms(sender_id="MyBrand"))

    request = fakes["webhook"].last
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "to": NZ,
        "body": BODY,
        "senderId": "MyBrand",
        "challengeId": CHALLENGE_ID,
        "send": 0,
        "sentAt": rfc3339(clock.now()),
    }
    # And a receiver holding the secret can verify it over the raw body
    assert request.headers["x-otp-timestamp"] == str(clock.now())
    assert verify_webhook(
        "webhook-shared-secret",
        timestamp=request.headers["x-otp-timestamp"],
        signature=request.headers["x-otp-signature"],
        body=request.body,
        now=clock.now(),
    )
    assert sent.message_id == "wh-0001"


@pytest.mark.parametrize(
    ("mode", "reason"), [("bad_request", "rejected"), ("auth", "auth"), ("bad_sender", "rejected")]
)
def test_webhook_other_errors_fail_over(mode: str, reason: str, fakes: dict[str, FakeVendor]) -> None:
    # (INVALID_SENDER_ID for a message that had no senderId is the receiver's doing)
    fakes["webhook"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("webhook", fakes["webhook"]).send(sms())
    assert caught.value.reason == reason
    assert caught.value.counts_against_circuit


@pytest.mark.parametrize(("mode", "sender_id"), [("bad_sender", "MyBrand"), ("bad_message", None)])
def test_webhook_refusing_the_sender_id_or_text_does_not_count(
    mode: str, sender_id: str | None, fakes: dict[str, FakeVendor]
) -> None:
    fakes["webhook"].mode = mode
    with pytest.raises(ProviderError) as caught:
        adapter("webhook", fakes["webhook"]).send(sms(sender_id=sender_id))
    assert caught.value.reason == "rejected_content"
    assert not caught.value.counts_against_circuit


# ---------------------------------------------------------------------------------------------- failover over HTTP


@pytest.mark.parametrize("failure", ["fail", "slow", "drop"])
def test_failover_sends_the_same_message_through_the_next_vendor(failure: str, fakes: dict[str, FakeVendor]) -> None:
    # Given Twilio down, slow or dropping, and Vonage healthy
    fakes["twilio"].mode, fakes["twilio"].delay = failure, 1.0
    sender = FailoverSender(
        {"twilio": adapter("twilio", fakes["twilio"]), "vonage": adapter("vonage", fakes["vonage"])},
        default_route=("twilio", "vonage"),
        timeout=0.3,
    )

    # When sending
    sent = sender.send(sms())

    # Then Vonage sent it, with exactly the body Twilio was given (the same code)
    assert sent.provider == "vonage"
    assert fakes["twilio"].last.form()["Body"] == [BODY]
    assert fakes["vonage"].last.form()["text"] == [BODY]


def test_a_bad_number_at_the_first_vendor_is_not_sent_elsewhere(fakes: dict[str, FakeVendor]) -> None:
    fakes["twilio"].mode = "bad_number"
    sender = FailoverSender(
        {"twilio": adapter("twilio", fakes["twilio"]), "vonage": adapter("vonage", fakes["vonage"])},
        default_route=("twilio", "vonage"),
    )
    with pytest.raises(InvalidPhoneNumberError):
        sender.send(sms())
    assert fakes["vonage"].requests == []


def test_bad_sender_ids_at_one_vendor_never_open_its_circuit(fakes: dict[str, FakeVendor]) -> None:
    from otp_core.sms.breaker import CircuitBreaker, CircuitStatus

    # Given Twilio refusing the request's sender ID, Vonage healthy, and a breaker that opens after 2 failures
    fakes["twilio"].mode = "bad_sender"
    store = MemoryCircuitStore()
    breaker = CircuitBreaker(store, FakeClock(), threshold=2, window_seconds=60, cooldown_seconds=30)
    sender = FailoverSender(
        {"twilio": adapter("twilio", fakes["twilio"]), "vonage": adapter("vonage", fakes["vonage"])},
        default_route=("twilio", "vonage"),
        breaker=breaker,
    )

    # When one caller sends five messages with that sender ID
    for _ in range(5):
        assert sender.send(sms(sender_id="MyBrand")).provider == "vonage"

    # Then Twilio was asked every time (never skipped) and its circuit is closed with no failures
    assert len(fakes["twilio"].requests) == 5
    assert (store.read("twilio").status, store.read("twilio").failures) == (CircuitStatus.CLOSED, 0)

    # While Twilio being down still opens it after two sends
    fakes["twilio"].mode = "fail"
    for _ in range(3):
        sender.send(sms())
    assert store.read("twilio").status is CircuitStatus.OPEN
    assert len(fakes["twilio"].requests) == 7
