"""Vonage and MessageMedia delivery receipts: what each send asks for, and how each signed receipt is read.

The signatures here are built the way each vendor documents them, independently of the adapters' own code:
Vonage's as its Python SDK computes ``sig`` (sorted ``&name=value``, ``&``/``=`` in values replaced by ``_``,
MD5 of that plus the secret or an HMAC under it), MessageMedia's as its webhook guides verify theirs (RSA
PKCS #1 v1.5 over request line + ``Date`` + body) with a key generated for the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pytest_socket import enable_socket, socket_allow_hosts

from local.vendors.servers import FakeVendor, running
from otp_core.errors import DependencyError, InvalidRequestError, NotFoundError, UnauthorizedError
from otp_core.records import OutgoingSms
from otp_core.sms.callbacks import CallbackConfig, CallbackRequest, DeliveryReport
from otp_core.sms.reports import DeliveryReports
from otp_core.sms.secret import ProviderSecret
from otp_core.sms.vendor import VendorConfig, VendorSender
from otp_core.sms.vendors import callback_class, sender_class
from otp_core.sms.vendors.messagemedia import MessageMediaCallback, load_public_key
from otp_core.sms.vendors.vonage import VonageCallback, vonage_signature
from tests.fakes import FakeClock, FakeDeliveryLog

CHALLENGE_ID = "3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b"
NOW = 1_800_000_000
BASE = "https://otp.example.com/api"
NZ = "+64211234567"
BODY = "123456 is your SMS OTP code. It expires in 10 minutes."
SIGNATURE_SECRET = "vonage-signature-secret"
VONAGE_MESSAGE_ID = "0B00000127FDBC63"
MM_MESSAGE_ID = "38a6a1a0-36a9-4117-aaee-c0e893393634"
MM_PATH = "/api/v1/delivery-status/messagemedia"
REFUSED = (UnauthorizedError, InvalidRequestError)
SECRET: dict[str, dict[str, str]] = {
    "vonage": {"apiKey": "vonage-key", "apiSecret": "vonage-secret", "from": "+447700900001"},
    "messagemedia": {"apiKey": "mm-key", "apiSecret": "mm-secret", "sourceNumber": "+61491570157"},
}


def short(value: object) -> str:
    """A readable test ID for a long parameter."""
    return repr(value)[:40]


def config(base_url: str = BASE, now: int = NOW) -> CallbackConfig:
    return CallbackConfig(FakeClock(now), base_url, 300)


def test_both_vendors_have_receipt_readers_verified_by_a_field_of_their_section() -> None:
    assert callback_class("vonage") is VonageCallback
    assert VonageCallback.credential == "signatureSecret"
    assert callback_class("messagemedia") is MessageMediaCallback
    assert MessageMediaCallback.credential == "webhookPublicKey"


# ---------------------------------------------------------------------------------------------- the sends


@pytest.fixture
def fakes(_no_network: None) -> Iterator[dict[str, FakeVendor]]:
    # The fakes listen on 127.0.0.1; every other address stays blocked (pytest-socket resets this afterwards).
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    with running("vonage", "messagemedia") as servers:
        yield servers


def adapter(name: str, fake: FakeVendor, callback_base_url: str) -> VendorSender:
    config = VendorConfig(
        load_credentials=lambda: SECRET, timeout=2.0, base_url=fake.url, callback_base_url=callback_base_url
    )
    return sender_class(name)(config)


def sms(send: int = 2) -> OutgoingSms:
    return OutgoingSms(to=NZ, body=BODY, sender_id=None, challenge_id=CHALLENGE_ID, send=send)


def test_vonage_asks_for_receipts_at_the_callback_url_with_the_challenge_and_send_as_client_ref(
    fakes: dict[str, FakeVendor],
) -> None:
    adapter("vonage", fakes["vonage"], BASE + "/").send(sms(send=2))

    form = fakes["vonage"].last.form()
    assert form["callback"] == ["https://otp.example.com/api/v1/delivery-status/vonage"]
    assert form["client-ref"] == [f"{CHALLENGE_ID}:2"]


def test_vonage_without_a_callback_base_url_sends_only_the_challenge_as_client_ref(
    fakes: dict[str, FakeVendor],
) -> None:
    adapter("vonage", fakes["vonage"], "").send(sms())

    form = fakes["vonage"].last.form()
    assert "callback" not in form
    assert form["client-ref"] == [CHALLENGE_ID]


def test_vonage_leaves_out_a_callback_url_over_its_100_character_limit(fakes: dict[str, FakeVendor]) -> None:
    adapter("vonage", fakes["vonage"], "https://" + "a" * 70 + ".example.com").send(sms(send=0))

    form = fakes["vonage"].last.form()
    assert "callback" not in form
    assert form["client-ref"] == [f"{CHALLENGE_ID}:0"]


def test_messagemedia_asks_for_delivery_reports_with_the_challenge_and_send_in_metadata(
    fakes: dict[str, FakeVendor],
) -> None:
    adapter("messagemedia", fakes["messagemedia"], BASE).send(sms(send=2))

    message = fakes["messagemedia"].last.json()["messages"][0]
    assert message["callback_url"] == "https://otp.example.com/api/v1/delivery-status/messagemedia"
    assert message["delivery_report"] is True
    assert message["metadata"] == {"challengeId": CHALLENGE_ID, "send": "2"}


def test_messagemedia_without_a_callback_base_url_asks_for_no_reports(fakes: dict[str, FakeVendor]) -> None:
    adapter("messagemedia", fakes["messagemedia"], "").send(sms())

    message = fakes["messagemedia"].last.json()["messages"][0]
    assert not {"callback_url", "delivery_report", "metadata"} & set(message)


# ---------------------------------------------------------------------------------------------- Vonage


def reference_sig(secret: str, params: Mapping[str, str], method: str = "md5hash") -> str:
    """``sig`` as Vonage's Python SDK computes it (Client.signature)."""
    hasher = hashlib.md5() if method == "md5hash" else hmac.new(secret.encode(), digestmod=method)  # noqa: S324
    for key in sorted(params):
        value = params[key].replace("&", "_").replace("=", "_")
        hasher.update(f"&{key}={value}".encode())
    if method == "md5hash":
        hasher.update(secret.encode())
    return hasher.hexdigest()


def dlr(
    *,
    status: str = "delivered",
    client_ref: str | None = f"{CHALLENGE_ID}:2",
    timestamp: int = NOW,
    method: str = "md5hash",
    secret: str = SIGNATURE_SECRET,
    **extra: str,
) -> dict[str, str]:
    """A signed delivery receipt's parameters, as the SMS API documents them."""
    params = {
        "msisdn": "64211234567",
        "to": "MyBrand",
        "network-code": "53001",
        "messageId": VONAGE_MESSAGE_ID,
        "price": "0.03330000",
        "status": status,
        "scts": "2605121310",
        "err-code": "0",
        "api-key": "vonage-key",
        "message-timestamp": "2027-01-15 08:00:00",
        "timestamp": str(timestamp),
        "nonce": "a1b2c3d4-e5f6",
        **extra,
    }
    if client_ref is not None:
        params["client-ref"] = client_ref
    params["sig"] = reference_sig(secret, params, method)
    return params


def as_get(params: Mapping[str, str]) -> CallbackRequest:
    return CallbackRequest.from_event(
        {"httpMethod": "GET", "multiValueQueryStringParameters": {k: [v] for k, v in params.items()}, "body": None}
    )


def as_form(params: Mapping[str, str]) -> CallbackRequest:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return CallbackRequest.from_event({"headers": headers, "body": urlencode(params)})


def as_json(params: Mapping[str, Any]) -> CallbackRequest:
    return CallbackRequest.from_event({"headers": {"Content-Type": "application/json"}, "body": json.dumps(params)})


def read_vonage(request: CallbackRequest, *, now: int = NOW, **options: Any) -> DeliveryReport | None:
    return VonageCallback(config(now=now)).read(request, SIGNATURE_SECRET, **options)


def test_the_signature_matches_the_vector_of_vonages_sdk() -> None:
    # Vonage's Python SDK test: a=1, b=2, timestamp=1461605396 under the secret "secret"
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage_signature("secret", params) == "6af838ef94998832dbfc29020b564830"
    # sig itself is never signed
    assert vonage_signature("secret", {**params, "sig": "x"}) == "6af838ef94998832dbfc29020b564830"


@pytest.mark.parametrize("method", ["md5hash", "sha256", "sha512"])
@pytest.mark.parametrize("shape", [as_get, as_form, as_json], ids=["GET", "POST", "POST-JSON"])
def test_a_signed_receipt_is_read_in_every_webhook_format_and_method(method: str, shape: Any) -> None:
    report = read_vonage(shape(dlr(method=method)))
    assert report == DeliveryReport(CHALLENGE_ID, VONAGE_MESSAGE_ID, "delivered", 2)


def test_values_with_ampersands_equals_and_other_scripts_are_signed_as_vonage_signs_them() -> None:
    params = dlr(to="Brand&Co=1 ✓")
    assert read_vonage(as_form(params)) is not None
    assert read_vonage(as_json(params)) is not None


def test_an_upper_case_hex_signature_is_the_same_signature() -> None:
    params = dlr(method="sha256")
    params["sig"] = params["sig"].upper()
    assert read_vonage(as_form(params)) is not None


def test_the_configured_method_is_required_when_given() -> None:
    assert read_vonage(as_form(dlr(method="sha256")), signature_method="sha256") is not None
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(dlr(method="md5hash")), signature_method="sha256")
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(dlr(method="sha256")), signature_method="sha1")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("delivered", "delivered"),
        ("expired", "failed"),
        ("failed", "failed"),
        ("rejected", "failed"),
        ("accepted", None),
        ("buffered", None),
        ("unknown", None),
        ("DELIVERED", None),
        ("something-new", None),
    ],
)
def test_final_statuses_are_outcomes_and_the_others_progress(status: str, outcome: str | None) -> None:
    report = read_vonage(as_form(dlr(status=status)))
    assert (report.status if report else None) == outcome


def test_a_client_ref_without_a_send_names_the_challenge_only() -> None:
    # A message sent before sends travelled with it
    assert read_vonage(as_form(dlr(client_ref=CHALLENGE_ID))) == DeliveryReport(
        CHALLENGE_ID, VONAGE_MESSAGE_ID, "delivered", None
    )


def test_an_unsigned_receipt_is_unauthorized() -> None:
    params = dlr()
    del params["sig"]
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(params))
    # Signed webhooks off: Vonage sends neither timestamp nor sig
    params.pop("timestamp")
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(params))


def test_a_receipt_without_a_timestamp_is_unauthorized_even_if_signed() -> None:
    params = dlr()
    del params["timestamp"], params["sig"]
    params["sig"] = reference_sig(SIGNATURE_SECRET, params)
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(params))


@pytest.mark.parametrize(
    "name",
    [name for name in dlr() if name != "sig"],
)
def test_tampering_with_any_parameter_breaks_the_signature(name: str) -> None:
    params = dlr()
    params[name] = "0" if params[name] != "0" else "1"
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(params))


def test_an_added_or_removed_parameter_breaks_the_signature() -> None:
    added = {**dlr(), "extra": "1"}
    removed = dlr()
    del removed["price"]
    for params in (added, removed):
        with pytest.raises(UnauthorizedError):
            read_vonage(as_form(params))


def test_another_secret_is_unauthorized() -> None:
    for method in ("md5hash", "sha256", "sha512"):
        with pytest.raises(UnauthorizedError):
            read_vonage(as_form(dlr(method=method, secret="another-secret")))


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_a_stale_or_future_timestamp_is_unauthorized(age: int) -> None:
    with pytest.raises(UnauthorizedError):
        read_vonage(as_form(dlr(timestamp=NOW - age)))


def test_a_timestamp_at_the_tolerance_is_accepted() -> None:
    assert read_vonage(as_form(dlr(timestamp=NOW - 300))) is not None
    assert read_vonage(as_form(dlr(timestamp=NOW + 300))) is not None


def test_repeated_parameters_are_unauthorized() -> None:
    params = dlr()
    query = {k: [v] for k, v in params.items()}
    query["status"] = ["delivered", "delivered"]
    form = urlencode(params) + "&status=delivered"
    duplicated_json = json.dumps(params)[:-1] + ', "status": "delivered"}'
    requests = [
        CallbackRequest.from_event({"multiValueQueryStringParameters": query}),
        CallbackRequest.from_event({"body": form}),
        CallbackRequest.from_event({"body": duplicated_json}),
        # The parameters in the query and the body: which are the receipt?
        CallbackRequest.from_event(
            {"multiValueQueryStringParameters": {k: [v] for k, v in params.items()}, "body": urlencode(params)}
        ),
    ]
    for request in requests:
        with pytest.raises(UnauthorizedError):
            read_vonage(request)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"body": None},
        {"body": ""},
        {"body": "   "},
        {"body": "not a form"},
        {"body": "a=1&&b=2"},
        {"body": "{"},
        {"body": "[1, 2]"},
        {"body": '{"status": 1}'},
        {"body": '{"status": {"a": "b"}}'},
        {"body": '{"timestamp": NaN}'},
        {"body": "[" * 100_000},
        {"body": "status=%ff%fe"},
        {"body": "\ud800=1"},
        {"body": "!!", "isBase64Encoded": True},
        {"body": base64.b64encode(b"\xff\xfe=1").decode(), "isBase64Encoded": True},
        {"body": "a=" + "x" * 20_000},
        {"body": "&".join(f"k{i}=v" for i in range(200))},
        {"body": "bad name=1"},
        {"body": "na\u00efve=1"},
        {"multiValueQueryStringParameters": {"sig": "abc"}},
        {"multiValueQueryStringParameters": {"sig": [None]}},
        {"multiValueQueryStringParameters": {"sig": [1]}},
        {"multiValueQueryStringParameters": {1: ["x"]}},
        {"multiValueQueryStringParameters": {"sig": []}},
        {"multiValueQueryStringParameters": {"timestamp": ["\u0661\u0662\u0663"], "sig": ["0" * 32]}},
        {"multiValueQueryStringParameters": {"timestamp": [str(NOW)], "sig": ["\uff10" * 32]}},
        {"multiValueQueryStringParameters": {"timestamp": [str(NOW)], "sig": ["g" * 32]}},
        {"multiValueQueryStringParameters": {"timestamp": [str(NOW)], "sig": ["0" * 33]}},
        {"multiValueQueryStringParameters": {"timestamp": [str(NOW)], "sig": ["0" * 32], "to": ["\ud800"]}},
        {"body": json.dumps({"timestamp": str(NOW), "sig": "0" * 32, "to": "\ud800"})},
        {"body": '{"a":' * 3000},
    ],
    ids=short,
)
def test_garbage_is_refused_and_never_raises_anything_else(event: dict[str, Any]) -> None:
    with pytest.raises(REFUSED):
        read_vonage(CallbackRequest.from_event(event))


@pytest.mark.parametrize(
    "client_ref",
    [
        None,
        "",
        "nope",
        CHALLENGE_ID.upper(),
        "3f2b8c1e-7d4a-1e6b-9a0c-5b1d2e3f4a5b",  # a UUID this service does not issue (v1)
        f"{CHALLENGE_ID}:",
        f"{CHALLENGE_ID}:x",
        f"{CHALLENGE_ID}:-1",
        f"{CHALLENGE_ID}:01",
        f"{CHALLENGE_ID}:1:2",
        f"{CHALLENGE_ID}:\u0661",
        f"{CHALLENGE_ID}:1234567890",
        f" {CHALLENGE_ID}",
        f"{CHALLENGE_ID}\n",
    ],
)
def test_a_signed_receipt_naming_no_send_of_a_challenge_is_invalid(client_ref: str | None) -> None:
    with pytest.raises(InvalidRequestError):
        read_vonage(as_form(dlr(client_ref=client_ref)))


@pytest.mark.parametrize("message_id", ["", "0B00 0001", "0B00\u00e9", "x" * 65])
def test_a_signed_receipt_with_a_malformed_message_id_is_invalid(message_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        read_vonage(as_form(dlr(messageId=message_id)))


def test_a_progress_receipt_is_acknowledged_whatever_its_client_ref() -> None:
    assert read_vonage(as_form(dlr(status="accepted", client_ref="not-ours"))) is None


# ---------------------------------------------------------------------------------------------- MessageMedia


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_der_b64(key: rsa.RSAPrivateKey) -> str:
    """The key as the Signature Key Management API returns ``public_key``: base64 DER, no armor."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def http_date(epoch: int) -> str:
    return formatdate(epoch, usegmt=True)


def report_body(
    *, status: str = "delivered", metadata: Any = None, message_id: Any = MM_MESSAGE_ID, **extra: Any
) -> bytes:
    """A delivery report as MessageMedia documents it."""
    document = {
        "callback_url": "https://otp.example.com/api/v1/delivery-status/messagemedia",
        "delivery_report_id": "01e1fa0a-6e27-4945-9cdb-18644b4de043",
        "source_number": NZ,
        "date_received": "2027-01-15T08:00:00.642Z",
        "status": status,
        "delay": 0,
        "submitted_date": "2027-01-15T08:00:00.639Z",
        "original_text": BODY,
        "message_id": message_id,
        "vendor_account_id": {"vendor_id": "MessageMedia", "account_id": "MyAccount"},
        "error_code": "220",
        "metadata": {"challengeId": CHALLENGE_ID, "send": "2"} if metadata is None else metadata,
        **extra,
    }
    return json.dumps(document).encode()


def mm_request(
    key: rsa.RSAPrivateKey,
    body: bytes,
    *,
    date: str | None = None,
    path: str = MM_PATH,
    request_line: str | None = None,
    digest: type[hashes.HashAlgorithm] = hashes.SHA256,
    digest_header: str | None = None,
    signature: str | None = None,
    event_path: str = MM_PATH,
    extra_event: Mapping[str, Any] | None = None,
) -> CallbackRequest:
    """The report as API Gateway hands it over, signed as MessageMedia signs (unless ``signature`` is given)."""
    date = http_date(NOW) if date is None else date
    if signature is None:
        signed = (request_line or f"POST {path} HTTP/1.1").encode() + date.encode() + body
        signature = base64.b64encode(key.sign(signed, padding.PKCS1v15(), digest())).decode()
    headers = {"Date": date, "X-MessageMedia-Signature": signature, "Content-Type": "application/json"}
    if digest_header is not None:
        headers["X-MessageMedia-Digest-Type"] = digest_header
    event: dict[str, Any] = {"headers": headers, "requestContext": {"path": event_path}, **(extra_event or {})}
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return CallbackRequest.from_event(event)


def read_mm(
    request: CallbackRequest, key: rsa.RSAPrivateKey | str, *, base_url: str = BASE, now: int = NOW
) -> DeliveryReport | None:
    credential = key if isinstance(key, str) else public_der_b64(key)
    return MessageMediaCallback(config(base_url, now)).read(request, credential)


EXPECTED = DeliveryReport(CHALLENGE_ID, MM_MESSAGE_ID, "delivered", 2)


@pytest.mark.parametrize(
    ("digest", "named"),
    [
        (hashes.SHA256, None),
        (hashes.SHA224, None),
        (hashes.SHA512, None),
        (hashes.SHA256, "SHA256"),
        (hashes.SHA224, "SHA224"),
        (hashes.SHA512, "sha512"),
    ],
)
def test_a_signed_report_is_read_with_any_digest_a_signature_key_may_have(
    signing_key: rsa.RSAPrivateKey, digest: type[hashes.HashAlgorithm], named: str | None
) -> None:
    request = mm_request(signing_key, report_body(), digest=digest, digest_header=named)
    assert read_mm(request, signing_key) == EXPECTED


def test_a_digest_header_naming_another_digest_is_unauthorized(signing_key: rsa.RSAPrivateKey) -> None:
    for named in ("SHA512", "MD5", "SHA1", "", "SHA256 "):
        request = mm_request(signing_key, report_body(), digest=hashes.SHA256, digest_header=named)
        if named == "SHA256 ":  # surrounding whitespace is the proxy's, not a different digest
            assert read_mm(request, signing_key) == EXPECTED
            continue
        with pytest.raises(UnauthorizedError):
            read_mm(request, signing_key)


def test_the_public_key_may_be_pem_or_the_apis_bare_base64(signing_key: rsa.RSAPrivateKey) -> None:
    request = mm_request(signing_key, report_body())
    one_line = "-----BEGIN PUBLIC KEY-----" + public_der_b64(signing_key) + "-----END PUBLIC KEY-----"
    for credential in (public_pem(signing_key), public_der_b64(signing_key), one_line, "  " + public_pem(signing_key)):
        assert read_mm(request, credential) == EXPECTED


@pytest.mark.parametrize("credential", ["not a key", "-----BEGIN PUBLIC KEY-----\nENTER_PUBLIC_KEY_HERE\n-----END"])
def test_a_configured_key_that_is_no_rsa_public_key_is_unavailable(
    signing_key: rsa.RSAPrivateKey, credential: str
) -> None:
    with pytest.raises(DependencyError):
        read_mm(mm_request(signing_key, report_body()), credential)


def test_load_public_key_refuses_non_rsa_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert load_public_key(base64.b64encode(der).decode()) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("delivered", "delivered"),
        ("failed", "failed"),
        ("rejected", "failed"),
        ("expired", "failed"),
        ("enroute", None),
        ("submitted", None),
        ("Delivered", None),
        ("new-status", None),
    ],
)
def test_final_statuses_are_outcomes_and_the_others_progress_mm(
    signing_key: rsa.RSAPrivateKey, status: str, outcome: str | None
) -> None:
    report = read_mm(mm_request(signing_key, report_body(status=status)), signing_key)
    assert (report.status if report else None) == outcome


def test_a_reply_notification_has_no_status_and_changes_nothing(signing_key: rsa.RSAPrivateKey) -> None:
    reply = json.dumps({"reply_id": "a", "message_id": MM_MESSAGE_ID, "content": "STOP", "metadata": {}}).encode()
    assert read_mm(mm_request(signing_key, reply), signing_key) is None


def test_metadata_without_a_send_names_the_challenge_only(signing_key: rsa.RSAPrivateKey) -> None:
    body = report_body(metadata={"challengeId": CHALLENGE_ID})
    assert read_mm(mm_request(signing_key, body), signing_key) == DeliveryReport(
        CHALLENGE_ID, MM_MESSAGE_ID, "delivered", None
    )


def test_without_a_base_url_the_request_line_is_the_path_called(signing_key: rsa.RSAPrivateKey) -> None:
    path = "/prod/v1/delivery-status/messagemedia"
    request = mm_request(signing_key, report_body(), path=path, event_path=path)
    assert read_mm(request, signing_key, base_url="") == EXPECTED
    # With the base URL configured, its path is the one MessageMedia was given, whatever the request says
    with pytest.raises(UnauthorizedError):
        read_mm(request, signing_key)


def test_an_unsigned_report_is_unauthorized(signing_key: rsa.RSAPrivateKey) -> None:
    body = report_body()
    event = {"headers": {"Date": http_date(NOW)}, "body": body.decode(), "requestContext": {"path": MM_PATH}}
    with pytest.raises(UnauthorizedError):
        read_mm(CallbackRequest.from_event(event), signing_key)
    no_date = {"headers": {"X-MessageMedia-Signature": "QUJD" * 86}, "body": body.decode()}
    with pytest.raises(UnauthorizedError):
        read_mm(CallbackRequest.from_event(no_date), signing_key)


def test_a_report_signed_by_another_key_is_unauthorized(signing_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(UnauthorizedError):
        read_mm(mm_request(other, report_body()), signing_key)


@pytest.mark.parametrize(
    "tampered",
    [
        report_body(status="failed"),
        report_body(message_id="00000000-0000-4000-8000-000000000000"),
        report_body(metadata={"challengeId": "00000000-0000-4000-8000-000000000000", "send": "2"}),
        report_body(metadata={"challengeId": CHALLENGE_ID, "send": "3"}),
        report_body() + b" ",
        b" " + report_body(),
    ],
)
def test_tampering_with_the_body_breaks_the_signature(signing_key: rsa.RSAPrivateKey, tampered: bytes) -> None:
    request = mm_request(signing_key, report_body())
    forged = CallbackRequest(headers=request.headers, query=None, body=tampered, path=request.path)
    with pytest.raises(UnauthorizedError):
        read_mm(forged, signing_key)


def test_tampering_with_the_date_path_or_signature_breaks_it(signing_key: rsa.RSAPrivateKey) -> None:
    body = report_body()
    good = mm_request(signing_key, body)
    signature = good.header("X-MessageMedia-Signature") or ""
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    forged = [
        # The date one second later than the one signed
        mm_request(signing_key, body, date=http_date(NOW + 1), signature=signature),
        # Signed for another path of this service
        mm_request(signing_key, body, path="/api/v1/delivery-status/twilio"),
        # Signed for another method or HTTP version
        mm_request(signing_key, body, request_line=f"PUT {MM_PATH} HTTP/1.1"),
        mm_request(signing_key, body, request_line=f"POST {MM_PATH} HTTP/2"),
        # Signed with separators the scheme does not have
        mm_request(signing_key, body, request_line=f"POST {MM_PATH} HTTP/1.1\r\n"),
        mm_request(signing_key, body, signature=flipped),
        mm_request(signing_key, body, signature=signature[:-4]),
    ]
    for request in forged:
        with pytest.raises(UnauthorizedError):
            read_mm(request, signing_key)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_a_stale_or_future_date_is_unauthorized(signing_key: rsa.RSAPrivateKey, age: int) -> None:
    with pytest.raises(UnauthorizedError):
        read_mm(mm_request(signing_key, report_body(), date=http_date(NOW - age)), signing_key)


def test_a_date_at_the_tolerance_is_accepted(signing_key: rsa.RSAPrivateKey) -> None:
    for age in (300, -300):
        assert read_mm(mm_request(signing_key, report_body(), date=http_date(NOW - age)), signing_key) == EXPECTED


@pytest.mark.parametrize(
    "date",
    [
        "2027-01-15T08:00:00Z",
        str(NOW),
        http_date(NOW).replace("GMT", "+0000"),
        http_date(NOW).replace("GMT", "UTC"),
        http_date(NOW).lower(),
        http_date(NOW)[5:],
        http_date(NOW).replace("2027", "\u0662\u0660\u0662\u0667"),
        "Fri, 31 Feb 2027 08:00:00 GMT",
        "Fri, 15 Jan 2027 25:00:00 GMT",
        "",
    ],
)
def test_a_date_that_is_no_http_date_is_unauthorized(signing_key: rsa.RSAPrivateKey, date: str) -> None:
    # Signed over exactly that text, so only the date's form is wrong
    with pytest.raises(UnauthorizedError):
        read_mm(mm_request(signing_key, report_body(), date=date), signing_key)


def test_repeated_headers_are_unauthorized(signing_key: rsa.RSAPrivateKey) -> None:
    good = mm_request(signing_key, report_body(), digest_header="SHA256")
    for name in ("date", "x-messagemedia-signature", "x-messagemedia-digest-type"):
        headers = dict(good.headers)
        headers[name] = headers[name] * 2
        with pytest.raises(UnauthorizedError):
            read_mm(CallbackRequest(headers=headers, body=good.body, path=good.path), signing_key)


def test_a_query_string_is_unauthorized(signing_key: rsa.RSAPrivateKey) -> None:
    # The callback URL this service sends has none, and API Gateway does not hand over the raw one signed
    request = mm_request(signing_key, report_body(), extra_event={"multiValueQueryStringParameters": {"a": ["1"]}})
    with pytest.raises(UnauthorizedError):
        read_mm(request, signing_key)


@pytest.mark.parametrize(
    "signature",
    ["", "not base64!", "QUJD", "=" * 344, "A" * 2000, "QUJD" * 86 + "\u00e9", "\uff21" * 344, "QUJD" * 85 + "QU=D"],
)
def test_a_signature_that_is_no_base64_signature_is_unauthorized(
    signing_key: rsa.RSAPrivateKey, signature: str
) -> None:
    with pytest.raises(UnauthorizedError):
        read_mm(mm_request(signing_key, report_body(), signature=signature), signing_key)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"headers": None, "body": None},
        {"headers": {"Date": 1, "X-MessageMedia-Signature": ["x"]}, "body": "{}"},
        {"headers": {"Date": http_date(NOW), "X-MessageMedia-Signature": "QUJD" * 86}, "body": 12},
        {"headers": {"Date": http_date(NOW), "X-MessageMedia-Signature": "QUJD" * 86}, "body": "\ud800"},
        {
            "headers": {"Date": http_date(NOW), "X-MessageMedia-Signature": "QUJD" * 86},
            "body": "!!",
            "isBase64Encoded": True,
        },
        {"headers": {"Date": "\ud800", "X-MessageMedia-Signature": "QUJD" * 86}, "body": "{}"},
        {"headers": {"Date": http_date(NOW), "X-MessageMedia-Signature": "QUJD" * 86}, "body": "x" * 100_000},
        {"multiValueHeaders": {"Date": [http_date(NOW), None]}, "body": "{}"},
        {"headers": {"Date": http_date(NOW)}, "body": "{}", "requestContext": {"path": "/v1/\u00e9"}},
    ],
    ids=short,
)
def test_garbage_requests_are_refused_and_never_raise_anything_else(
    signing_key: rsa.RSAPrivateKey, event: dict[str, Any]
) -> None:
    with pytest.raises(REFUSED):
        read_mm(CallbackRequest.from_event(event), signing_key, base_url="")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'"delivered"',
        b"\xff\xfe{}",
        b'{"status": "delivered", "status": "failed"}',
        b'{"status": 1}',
        b'{"status": NaN}',
        b"[" * 10_000,
    ],
    ids=short,
)
def test_a_signed_body_that_is_no_report_is_invalid(signing_key: rsa.RSAPrivateKey, body: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        read_mm(mm_request(signing_key, body), signing_key)


@pytest.mark.parametrize(
    ("metadata", "message_id"),
    [
        ({}, MM_MESSAGE_ID),
        ([], MM_MESSAGE_ID),
        ("challenge", MM_MESSAGE_ID),
        ({"challengeId": "nope", "send": "2"}, MM_MESSAGE_ID),
        ({"challengeId": CHALLENGE_ID.upper(), "send": "2"}, MM_MESSAGE_ID),
        ({"challengeId": 7, "send": "2"}, MM_MESSAGE_ID),
        ({"challengeId": CHALLENGE_ID, "send": 2}, MM_MESSAGE_ID),
        ({"challengeId": CHALLENGE_ID, "send": "x"}, MM_MESSAGE_ID),
        ({"challengeId": CHALLENGE_ID, "send": "\u0662"}, MM_MESSAGE_ID),
        ({"challengeId": CHALLENGE_ID, "send": "-1"}, MM_MESSAGE_ID),
        ({"challengeId": CHALLENGE_ID, "send": "2"}, ""),
        ({"challengeId": CHALLENGE_ID, "send": "2"}, 12),
        ({"challengeId": CHALLENGE_ID, "send": "2"}, "id with spaces"),
    ],
)
def test_a_signed_report_naming_no_send_of_a_challenge_is_invalid(
    signing_key: rsa.RSAPrivateKey, metadata: Any, message_id: Any
) -> None:
    body = report_body(metadata=metadata, message_id=message_id)
    with pytest.raises(InvalidRequestError):
        read_mm(mm_request(signing_key, body), signing_key)


def test_a_signed_report_without_a_message_id_names_none(signing_key: rsa.RSAPrivateKey) -> None:
    document = json.loads(report_body())
    del document["message_id"]
    report = read_mm(mm_request(signing_key, json.dumps(document).encode()), signing_key)
    assert report == DeliveryReport(CHALLENGE_ID, None, "delivered", 2)


# ---------------------------------------------------------------------------------------------- the use case


def reports(secret: Mapping[str, Any]) -> DeliveryReports:
    text = json.dumps(secret)
    return DeliveryReports(
        ProviderSecret("sms-providers", lambda _: text),
        FakeDeliveryLog(),
        FakeClock(NOW),
        base_url=BASE,
        tolerance_seconds=300,
    )


def test_the_delivery_status_route_reads_each_vendor_with_the_credential_from_its_section(
    signing_key: rsa.RSAPrivateKey,
) -> None:
    secret = {
        "vonage": {**SECRET["vonage"], "signatureSecret": SIGNATURE_SECRET},
        "messagemedia": {**SECRET["messagemedia"], "webhookPublicKey": public_pem(signing_key)},
    }
    vonage = reports(secret).receive("vonage", as_form(dlr()))
    assert vonage == DeliveryReport(CHALLENGE_ID, VONAGE_MESSAGE_ID, "delivered", 2)
    assert reports(secret).receive("messagemedia", mm_request(signing_key, report_body())) == EXPECTED


def test_without_the_credential_in_the_section_there_is_no_route(signing_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(NotFoundError):
        reports(SECRET).receive("vonage", as_form(dlr()))
    with pytest.raises(NotFoundError):
        reports(SECRET).receive("messagemedia", mm_request(signing_key, report_body()))


def test_the_secret_s_signature_method_is_enforced_by_the_use_case() -> None:
    """DeliveryReports passes the vonage section's signatureMethod to the reader: a receipt signed another
    (weaker) way is refused, one signed the configured way is read."""
    import json as _json

    from otp_core.errors import UnauthorizedError as _Unauthorized

    assert VonageCallback.signature_method_field == "signatureMethod"

    def receiver(method: str | None) -> DeliveryReports:
        section: dict[str, str] = {"signatureSecret": SIGNATURE_SECRET}
        if method is not None:
            section["signatureMethod"] = method
        secret = _json.dumps({"vonage": section})
        return DeliveryReports(
            ProviderSecret("s", lambda _: secret),
            FakeDeliveryLog(),
            FakeClock(NOW),
            base_url=BASE,
            tolerance_seconds=300,
        )

    md5_signed = as_form(dlr(method="md5hash"))
    with pytest.raises(_Unauthorized):
        receiver("sha512").receive("vonage", md5_signed)
    assert receiver("md5hash").receive("vonage", md5_signed) is not None
    assert receiver(None).receive("vonage", md5_signed) is not None
