"""What ``make vendors`` prints for each request a fake receives: the SMS in it, so a walk-through can go on."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from local.vendors.__main__ import describe
from local.vendors.servers import RecordedRequest

TEXT = "123456 is your sms-otp-local verification code."


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("vendor", "body"),
    [
        ("twilio", urlencode({"To": "+14155552675", "Body": TEXT, "From": "+15017122661"}).encode()),
        ("vonage", urlencode({"from": "SmsOtp", "to": "14155552675", "text": TEXT}).encode()),
        (
            "bird",
            _json(
                {
                    "receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": "+14155552675"}]},
                    "body": {"type": "text", "text": {"text": TEXT}},
                }
            ),
        ),
        ("messagemedia", _json({"messages": [{"content": TEXT, "destination_number": "+14155552675"}]})),
        ("tnz", _json({"Message": TEXT, "Destinations": [{"Recipient": "+14155552675"}]})),
        ("modica", _json({"destination": "+14155552675", "content": TEXT})),
        ("webhook", _json({"to": "+14155552675", "body": TEXT, "senderId": None})),
    ],
)
def test_each_vendor_request_prints_its_sms(vendor: str, body: bytes) -> None:
    request = RecordedRequest("POST", "/any?x=1", {}, body)

    assert describe(vendor, request) == f"[{vendor}] SMS to +14155552675: {TEXT}"


def test_a_request_without_an_sms_prints_its_route() -> None:
    request = RecordedRequest("POST", "/sms/json?x=1", {}, b"not a form with to and text")

    assert describe("vonage", request) == "[vonage] POST /sms/json (no SMS in it)"


def test_an_end_user_messaging_send_prints_its_sms_and_a_dry_run_says_so() -> None:
    from local.vendors.__main__ import describe_eum

    sent = {"DestinationPhoneNumber": "+14155552675", "MessageBody": TEXT, "MessageType": "TRANSACTIONAL"}
    assert describe_eum(sent) == f"[eum] SMS to +14155552675: {TEXT}"
    assert describe_eum({**sent, "DryRun": True}).endswith("(dry run: validated, not sent)")
