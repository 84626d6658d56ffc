"""Callback signatures: the webhook provider's HMAC-SHA256 with a replay window, and Twilio's HMAC-SHA1."""

from __future__ import annotations

import pytest

from otp_core.sms.vendors.twilio import twilio_callback_url, twilio_signature, verify_twilio
from otp_core.sms.vendors.webhook import verify_webhook, webhook_signature

SECRET = "webhook-shared-secret"
NOW = 1_795_299_000
BODY = b'{"challengeId":"3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b","status":"delivered"}'


def signed(body: bytes = BODY, at: int = NOW) -> tuple[str, str]:
    return str(at), webhook_signature(SECRET, str(at), body)


# ---------------------------------------------------------------------------------------------- webhook


def test_a_valid_webhook_signature_verifies() -> None:
    timestamp, signature = signed()
    assert verify_webhook(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW + 10)


def test_the_webhook_signature_is_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert webhook_signature(SECRET, str(NOW), BODY) == expected


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t, s, b: (t, s, b.replace(b"delivered", b"failed")),
        lambda t, s, b: (t, s[:-1] + ("0" if s[-1] != "0" else "1"), b),
        lambda t, s, b: (str(int(t) + 1), s, b),
    ],
    ids=["body", "signature", "timestamp"],
)
def test_a_tampered_webhook_request_is_refused(tamper) -> None:
    timestamp, signature, body = tamper(*signed(), BODY)
    assert not verify_webhook(SECRET, timestamp=timestamp, signature=signature, body=body, now=NOW)


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_a_replayed_or_future_webhook_request_is_refused(age: int) -> None:
    # A correct signature outside the five-minute window is treated as a replay
    timestamp, signature = signed(at=NOW - age)
    assert not verify_webhook(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW)


def test_the_replay_window_is_configurable() -> None:
    timestamp, signature = signed(at=NOW - 600)
    assert verify_webhook(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW, tolerance_seconds=900)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [(None, "abc"), (str(NOW), None), ("", ""), ("12e3", "abc"), ("-1", "abc"), ("9" * 40, "abc")],
)
def test_malformed_webhook_headers_are_refused(timestamp: str | None, signature: str | None) -> None:
    assert not verify_webhook(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW)


def test_a_webhook_signature_under_another_secret_is_refused() -> None:
    timestamp = str(NOW)
    signature = webhook_signature("another-secret", timestamp, BODY)
    assert not verify_webhook(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW)


# ---------------------------------------------------------------------------------------------- Twilio


def test_twilio_signature_matches_twilios_published_example() -> None:
    # The example from Twilio's request-validation documentation (auth token 12345)
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verify_twilio("12345", url=url, params=params, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_twilio_parameters_are_signed_in_sorted_order_whatever_the_posting_order() -> None:
    params = [("MessageStatus", "delivered"), ("AccountSid", "AC1"), ("MessageSid", "SM1")]
    assert twilio_signature("t", "https://x", params) == twilio_signature("t", "https://x", sorted(params))


def test_a_tampered_twilio_callback_is_refused() -> None:
    url = twilio_callback_url("https://api.example.com/api", "3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b")
    params = [("MessageSid", "SM1"), ("MessageStatus", "undelivered")]
    signature = twilio_signature("token", url, params)

    assert verify_twilio("token", url=url, params=params, signature=signature)
    # another status, another challenge, another token, no signature
    delivered = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
    assert not verify_twilio("token", url=url, params=delivered, signature=signature)
    other = twilio_callback_url("https://api.example.com/api", "00000000-0000-4000-8000-000000000000")
    assert not verify_twilio("token", url=other, params=params, signature=signature)
    assert not verify_twilio("other", url=url, params=params, signature=signature)
    assert not verify_twilio("token", url=url, params=params, signature=None)


def test_the_twilio_callback_url_carries_the_challenge() -> None:
    assert (
        twilio_callback_url("https://api.example.com/api/", "abc")
        == "https://api.example.com/api/v1/delivery-status/twilio?challengeId=abc"
    )


# ---------------------------------------------------------------------------------------------- hostile headers

_VALID_TIMESTAMP, _VALID_SIGNATURE = signed()


def _digits(number: int, zero: int) -> str:
    """``number`` written in the digits of another script (``zero`` is that script's digit zero)."""
    return "".join(chr(zero + int(digit)) for digit in str(number))


@pytest.mark.parametrize(
    "timestamp",
    [
        "²",  # superscript two: str.isdigit() is True, int() raises
        _digits(NOW, 0x0660),  # Arabic-Indic digits: int() accepts them, the signature input must be ASCII
        _digits(NOW, 0xFF10),  # fullwidth digits
        f"{NOW}\n",
        f"+{NOW}",
        f"{NOW}.0",
        " ",
        "\x00",
        "9" * 13,
        "1" * 10_000,
    ],
    ids=["superscript", "arabic-indic", "fullwidth", "newline", "plus", "decimal", "space", "nul", "13-digits", "huge"],
)
def test_a_hostile_webhook_timestamp_fails_to_verify_without_raising(timestamp: str) -> None:
    # Given a correct signature and a timestamp no receiver would send
    # When verifying, then it is simply refused (no exception escapes)
    assert not verify_webhook(SECRET, timestamp=timestamp, signature=_VALID_SIGNATURE, body=BODY, now=NOW)


@pytest.mark.parametrize(
    "signature",
    [
        "é" * 64,  # hmac.compare_digest raises TypeError on non-ASCII str
        _VALID_SIGNATURE[:-1] + "é",
        _VALID_SIGNATURE[:-1] + "\ud800",
        "\uff46" * 64,  # fullwidth f: .lower() and isalnum() would not catch it
        _VALID_SIGNATURE + "00",
        _VALID_SIGNATURE[:-2],
        _VALID_SIGNATURE + "\n" + _VALID_SIGNATURE,
        "g" * 64,
        "a" * 100_000,
        "",
    ],
    ids=["non-ascii", "one-non-ascii", "surrogate", "fullwidth", "long", "short", "two", "not-hex", "huge", "empty"],
)
def test_a_hostile_webhook_signature_fails_to_verify_without_raising(signature: str) -> None:
    assert not verify_webhook(SECRET, timestamp=_VALID_TIMESTAMP, signature=signature, body=BODY, now=NOW)


def test_a_webhook_signature_survives_surrounding_spaces_and_upper_case() -> None:
    # Given the right signature, upper-cased and padded as a proxy might leave it
    # When verifying, then it still verifies (the comparison is over the normalised ASCII bytes)
    padded = f" {_VALID_SIGNATURE.upper()}\t"
    assert verify_webhook(SECRET, timestamp=f" {_VALID_TIMESTAMP} ", signature=padded, body=BODY, now=NOW)


@pytest.mark.parametrize(
    "signature",
    ["é" * 28, "RSOYDt4T1cUTdK1PDd93/VVr8B8é", "RSOYDt4T1cUTdK1PDd93/VVr8B8=\ud800", "\uff21" * 28, "A" * 100_000, " "],
    ids=["non-ascii", "one-non-ascii", "surrogate", "fullwidth", "huge", "blank"],
)
def test_a_hostile_twilio_signature_fails_to_verify_without_raising(signature: str) -> None:
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309")]
    assert not verify_twilio("12345", url="https://mycompany.com/x", params=params, signature=signature)


def test_a_twilio_body_or_url_without_a_utf8_form_fails_to_verify_without_raising() -> None:
    # Given a lone surrogate in a posted value and in the URL (possible in an event's JSON, never from Twilio)
    signature = twilio_signature("12345", "https://x", [("MessageStatus", "delivered")])

    # When verifying, then it is refused rather than raising UnicodeEncodeError
    assert not verify_twilio("12345", url="https://x", params=[("MessageStatus", "\ud800")], signature=signature)
    assert not verify_twilio("12345", url="https://x\udfff", params=[], signature=signature)
