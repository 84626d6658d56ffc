"""End User Messaging delivery events through SNS: the signature check, the event reader, the Lambda event."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_socket import enable_socket, socket_allow_hosts

from local.sns_signing import LocalSnsSigner, eum_event, lambda_event, new_certificate, sns_timestamp
from otp_core.errors import DependencyError, InvalidRequestError, UnauthorizedError
from otp_core.sms.callbacks import DeliveryReport
from otp_core.sms.delivery import DELIVERED, FAILED
from otp_core.sms.sns_events import (
    MAX_CACHED_CERTS,
    MAX_CERT_BYTES,
    EumEventReader,
    EumReceipt,
    SnsSignatureVerifier,
    sns_records,
)
from tests.fakes import FakeClock

CHALLENGE_ID = "3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b"
MESSAGE_ID = "862a8790-60c0-4430-9b2b-658bdexample"
TOPIC = "arn:aws:sns:eu-west-2:111122223333:otp-sms-events"
AWS_CERT_URL = "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"


@pytest.fixture(scope="module")
def signer() -> LocalSnsSigner:
    """A signing key and its certificate; the server is started only by the tests that fetch over HTTP."""
    return LocalSnsSigner()


@pytest.fixture(scope="module")
def other_signer() -> LocalSnsSigner:
    return LocalSnsSigner()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Loader:
    """An injected certificate loader: serves ``pem`` for any URL and records the URLs asked for."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.pem


@pytest.fixture
def loader(signer: LocalSnsSigner) -> Loader:
    return Loader(signer.certificate_pem)


def verifier(clock: FakeClock, loader: Any, **options: Any) -> SnsSignatureVerifier:
    return SnsSignatureVerifier(topic_arns=[TOPIC], clock=clock, load_certificate=loader, **options)


def signed(signer: LocalSnsSigner, clock: FakeClock, message: str = "hello", **options: Any) -> dict[str, Any]:
    options.setdefault("timestamp", sns_timestamp(clock.now()))
    options.setdefault("cert_url", AWS_CERT_URL)
    return signer.sign_notification(message, options.pop("topic_arn", TOPIC), **options)


# ------------------------------------------------------------------------------------------- signatures


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Delivery event", ""])
def test_a_notification_signed_by_sns_verifies(signer, clock, loader, version, subject):
    # Given a notification signed as SNS signs it (Subject null when none was set, as Lambda delivers it)
    record = signed(
        signer, clock, eum_event(CHALLENGE_ID, 0, "TEXT_DELIVERED", MESSAGE_ID), version=version, subject=subject
    )

    # When it is verified, then nothing is raised, and the certificate came from its URL
    verifier(clock, loader).verify(record)
    assert loader.urls == [AWS_CERT_URL]


def test_a_notification_without_a_subject_field_verifies(signer, clock, loader):
    record = signed(signer, clock)
    del record["Subject"]
    verifier(clock, loader).verify(record)


def test_the_http_spelling_of_the_certificate_url_is_accepted(signer, clock, loader):
    record = signed(signer, clock)
    record["SigningCertURL"] = record.pop("SigningCertUrl")
    verifier(clock, loader).verify(record)
    # Both spellings naming the same URL are one URL; two different ones are refused
    record["SigningCertUrl"] = AWS_CERT_URL
    verifier(clock, loader).verify(record)
    record["SigningCertUrl"] = AWS_CERT_URL.replace("9c64", "0000")
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


def test_china_regions_certificate_host_is_accepted(signer, clock, loader):
    topic = "arn:aws-cn:sns:cn-north-1:111122223333:otp-sms-events"
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"
    found = SnsSignatureVerifier(topic_arns=[topic], clock=clock, load_certificate=loader)
    found.verify(signed(signer, clock, cert_url=url, topic_arn=topic))


@pytest.mark.parametrize(
    "url",
    [
        # Another region's SNS host: SNS signs with its own region's certificate
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        # Hosts the SNS host pattern alone lets through: a legacy S3 website endpoint of a bucket named "sns"
        "https://sns.s3-us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.s3-eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
    ],
)
def test_a_certificate_off_the_topic_s_regional_sns_host_is_refused(signer, clock, loader, url):
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(signed(signer, clock, cert_url=url))
    assert loader.urls == []


@pytest.mark.parametrize(
    "field",
    ["Signature", "SignatureVersion", "Message", "MessageId", "Timestamp", "TopicArn", "Type", "SigningCertUrl"],
)
def test_a_notification_missing_a_field_is_refused(signer, clock, loader, field):
    record = signed(signer, clock)
    del record[field]
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)
    assert loader.urls == []  # refused before any certificate is fetched


@pytest.mark.parametrize(
    "field",
    [
        "Signature",
        "SignatureVersion",
        "Message",
        "MessageId",
        "Timestamp",
        "TopicArn",
        "Type",
        "Subject",
        "SigningCertUrl",
    ],
)
@pytest.mark.parametrize("value", [1, ["x"], {"a": "b"}, True])
def test_a_field_that_is_not_a_string_is_refused(signer, clock, loader, field, value):
    record = signed(signer, clock)
    record[field] = value
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


@pytest.mark.parametrize("record", [None, "Notification", ["Notification"], 42])
def test_a_record_that_is_not_an_object_is_refused(clock, loader, record):
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


@pytest.mark.parametrize("signature", ["", "not base64!", "QUJD", "QUJDRA=", "A" * 2000])
def test_an_unsigned_or_garbled_signature_is_refused(signer, clock, loader, signature):
    record = signed(signer, clock)
    record["Signature"] = signature
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", "hello!"),
        ("MessageId", "00000000-0000-4000-8000-000000000000"),
        ("Subject", "added"),
        ("TopicArn", "arn:aws:sns:eu-west-2:111122223333:otp-sms-events-2"),
    ],
)
def test_a_tampered_notification_is_refused(signer, clock, loader, field, value):
    record = signed(signer, clock)
    record[field] = value
    # (a tampered topic is also checked against the signature: list both topics so only the signature refuses it)
    checker = SnsSignatureVerifier(topic_arns=[TOPIC, value], clock=clock, load_certificate=loader)
    with pytest.raises(UnauthorizedError):
        checker.verify(record)


def test_a_tampered_timestamp_is_refused(signer, clock, loader):
    record = signed(signer, clock)
    record["Timestamp"] = sns_timestamp(clock.now() - 1)
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


def test_a_removed_subject_is_refused(signer, clock, loader):
    record = signed(signer, clock, subject="signed")
    record["Subject"] = None
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


@pytest.mark.parametrize(("signed_as", "claimed"), [("1", "2"), ("2", "1"), ("2", "3"), ("2", "0"), ("2", "")])
def test_a_wrong_signature_version_is_refused(signer, clock, loader, signed_as, claimed):
    record = signed(signer, clock, version=signed_as)
    record["SignatureVersion"] = claimed
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation", "notification"])
def test_only_notifications_are_accepted(signer, clock, loader, kind):
    record = signed(signer, clock)
    record["Type"] = kind
    record["Signature"] = signer.signature(record)  # even correctly signed
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


def test_a_notification_of_a_foreign_topic_is_refused(signer, clock, loader):
    record = signed(signer, clock, topic_arn="arn:aws:sns:eu-west-2:999999999999:otp-sms-events")
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)
    # and no topic configured accepts nothing
    with pytest.raises(UnauthorizedError):
        SnsSignatureVerifier(topic_arns=[""], clock=clock, load_certificate=loader).verify(
            signed(signer, clock, topic_arn="")
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.txt",
        "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
        "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem#x",
        "https://sns.eu-west-2.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://user@sns.eu-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-2.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-2.amazonaws.com\\@evil.example/x.pem",
        "https://evil.example/sns.eu-west-2.amazonaws.com/x.pem",
        "https://sqs.eu-west-2.amazonaws.com/x.pem",
        "https://sns.ab.amazonaws.com/x.pem",
        "https://sns.eu-west-2.amazonaws.com./x.pem",
        "https://sns.eu-west-2.amazonaws.com/x .pem",
        "https://sns.eu-west-2.amazonaws.com/é.pem",
        "https://[::1]/x.pem",
        "https://sns.eu-west-2.amazonaws.com:99999/x.pem",
        "file:///etc/sns.eu-west-2.amazonaws.com.pem",
        "",
        "https://sns.eu-west-2.amazonaws.com/" + "a" * 3000 + ".pem",
    ],
)
def test_a_certificate_url_off_the_sns_hosts_is_refused(signer, clock, loader, url):
    record = signed(signer, clock, cert_url="placeholder")
    record["SigningCertUrl"] = url
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)
    assert loader.urls == []  # never fetched


def test_a_trusted_pattern_replaces_the_host_rule(signer, clock, loader):
    trusted = re.compile(r"http://127\.0\.0\.1:8123/[A-Za-z0-9._-]+\.pem")
    checker = verifier(clock, loader, trusted_cert_url=trusted)
    checker.verify(signed(signer, clock, cert_url="http://127.0.0.1:8123/cert.pem"))
    for url in (AWS_CERT_URL, "http://127.0.0.1:8124/cert.pem", "http://127.0.0.1:8123/cert.txt"):
        with pytest.raises(UnauthorizedError):
            checker.verify(signed(signer, clock, cert_url=url))


@pytest.mark.parametrize("age", [0, 1, 3599, 3600])
def test_a_notification_within_the_tolerance_verifies(signer, clock, loader, age):
    record = signed(signer, clock, timestamp=sns_timestamp(clock.now() - age))
    verifier(clock, loader).verify(record)


@pytest.mark.parametrize(("tolerance", "age"), [(3600, 3601), (3600, 86_400), (300, 301)])
def test_a_replayed_notification_older_than_the_tolerance_is_refused(signer, clock, loader, tolerance, age):
    record = signed(signer, clock)
    clock.advance(age)
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader, tolerance_seconds=tolerance).verify(record)


def test_a_notification_from_the_future_is_refused_beyond_five_minutes(signer, clock, loader):
    verifier(clock, loader).verify(signed(signer, clock, timestamp=sns_timestamp(clock.now() + 300)))
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(signed(signer, clock, timestamp=sns_timestamp(clock.now() + 301)))


def test_sns_timestamps_with_and_without_milliseconds_are_read(signer, clock, loader):
    at = datetime.fromtimestamp(clock.now(), UTC)
    for text in (
        at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        at.strftime("%Y-%m-%dT%H:%M:%S.123456Z"),
    ):
        verifier(clock, loader).verify(signed(signer, clock, timestamp=text))


@pytest.mark.parametrize(
    "timestamp",
    [
        "2027-01-15T01:00:00.000",
        "2027-01-15T01:00:00.000+00:00",
        "2027-13-15T01:00:00.000Z",
        "2027-02-30T01:00:00.000Z",
        "2027-01-15 01:00:00.000Z",
        "١٧٩٩٩٧٤٨٠٠",
        "1799974800",
        "",
    ],
)
def test_a_timestamp_that_is_not_an_sns_timestamp_is_refused(signer, clock, loader, timestamp):
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(signed(signer, clock, timestamp=timestamp))


def test_a_signature_by_another_key_is_refused(signer, other_signer, clock, loader):
    # Given a notification signed by another key, naming the certificate of the trusted one
    record = signed(other_signer, clock)
    # Then it does not verify
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


def test_a_message_with_no_utf8_form_is_refused(signer, clock, loader):
    record = signed(signer, clock)
    record["Message"] = "\ud800"
    with pytest.raises(UnauthorizedError):
        verifier(clock, loader).verify(record)


def test_a_certificate_that_is_not_rsa_or_not_valid_now_is_refused(signer, clock):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    now = datetime.fromtimestamp(clock.now(), UTC)
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    expired = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now - timedelta(days=1))
        .sign(signer.key, hashes.SHA256())
    )
    for certificate in (ec_cert, expired):
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        with pytest.raises(UnauthorizedError):
            verifier(clock, Loader(pem)).verify(signed(signer, clock))


@pytest.mark.parametrize("error", [OSError("unreachable"), TimeoutError(), ValueError("bad"), DependencyError("down")])
def test_a_certificate_that_cannot_be_fetched_is_a_dependency_error(signer, clock, error):
    def failing(url: str) -> bytes:
        raise error

    with pytest.raises(DependencyError):
        verifier(clock, failing).verify(signed(signer, clock))


@pytest.mark.parametrize(
    "pem", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_a_certificate_that_cannot_be_read_is_a_dependency_error(signer, clock, pem):
    with pytest.raises(DependencyError):
        verifier(clock, Loader(pem)).verify(signed(signer, clock))


def test_certificates_are_cached_per_url_and_the_cache_is_bounded(signer, clock, loader):
    checker = verifier(clock, loader)
    checker.verify(signed(signer, clock))
    checker.verify(signed(signer, clock))
    assert loader.urls == [AWS_CERT_URL]

    # Given more certificate URLs than the cache holds
    urls = [f"https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-{n}.pem" for n in range(MAX_CACHED_CERTS)]
    for url in urls:
        checker.verify(signed(signer, clock, cert_url=url))
    # Then the oldest was dropped, and the newest are still cached
    loader.urls.clear()
    checker.verify(signed(signer, clock, cert_url=urls[-1]))
    checker.verify(signed(signer, clock))
    assert loader.urls == [AWS_CERT_URL]


# ------------------------------------------------------------------------------------------- over HTTP


@pytest.fixture
def _loopback_only(_no_network: None) -> None:
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture
def served(signer: LocalSnsSigner, _loopback_only: None) -> Iterator[LocalSnsSigner]:
    with signer:
        yield signer


class OddServer:
    """A server that redirects to the signer's certificate, serves an oversized one, or fails."""

    def __init__(self, target: str) -> None:
        target_url = target

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/redirect.pem":
                    self.send_response(302)
                    self.send_header("Location", target_url)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/big.pem":
                    body = b"A" * (MAX_CERT_BYTES + 1)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(500)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.base = f"http://{host!s}:{port}"


@pytest.fixture
def odd(served: LocalSnsSigner) -> Iterator[OddServer]:
    server = OddServer(served.cert_url)
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_the_certificate_is_fetched_from_the_local_server_once(served, clock):
    # Given the default loader (urllib) and the local server's URL trusted
    checker = SnsSignatureVerifier(topic_arns=[TOPIC], clock=clock, trusted_cert_url=served.trusted_cert_url)
    before = served.fetches

    # When two notifications are verified
    for version in ("1", "2"):
        checker.verify(served.sign_notification("hi", TOPIC, version=version, timestamp=sns_timestamp(clock.now())))

    # Then the certificate was fetched once
    assert served.fetches == before + 1


def test_the_local_pattern_trusts_only_that_server(served, clock):
    assert served.trusted_cert_url.fullmatch(served.cert_url)
    assert not served.trusted_cert_url.fullmatch(served.cert_url.replace("127.0.0.1", "127.0.0.2"))
    assert not served.trusted_cert_url.fullmatch(served.cert_url + "x")


@pytest.mark.parametrize("path", ["/redirect.pem", "/big.pem", "/error.pem"])
def test_a_redirect_an_oversized_certificate_or_an_error_is_a_dependency_error(odd, served, clock, path):
    pattern = re.compile(re.escape(odd.base) + r"/[a-z]+\.pem")
    checker = SnsSignatureVerifier(topic_arns=[TOPIC], clock=clock, trusted_cert_url=pattern)
    before = served.fetches
    record = served.sign_notification("hi", TOPIC, timestamp=sns_timestamp(clock.now()), cert_url=odd.base + path)
    with pytest.raises(DependencyError):
        checker.verify(record)
    assert served.fetches == before  # the redirect was not followed


@pytest.mark.usefixtures("_loopback_only")
def test_an_unreachable_certificate_server_is_a_dependency_error(signer, clock):
    # Given a server that was stopped
    with signer:
        url, pattern = signer.cert_url, signer.trusted_cert_url
    checker = SnsSignatureVerifier(topic_arns=[TOPIC], clock=clock, trusted_cert_url=pattern)
    with pytest.raises(DependencyError):
        checker.verify(signer.sign_notification("hi", TOPIC, timestamp=sns_timestamp(clock.now()), cert_url=url))


# ------------------------------------------------------------------------------------------- EUM events

EXPECTED = {
    "TEXT_DELIVERED": DELIVERED,
    "TEXT_SUCCESSFUL": DELIVERED,
    "TEXT_BLOCKED": FAILED,
    "TEXT_CARRIER_BLOCKED": FAILED,
    "TEXT_PROTECT_BLOCKED": FAILED,
    "TEXT_SPAM": FAILED,
    "TEXT_INVALID": FAILED,
    "TEXT_INVALID_MESSAGE": FAILED,
    "TEXT_UNREACHABLE": FAILED,
    "TEXT_CARRIER_UNREACHABLE": FAILED,
    "TEXT_TTL_EXPIRED": FAILED,
    "TEXT_UNKNOWN": FAILED,
    "TEXT_QUEUED": None,
    "TEXT_PENDING": None,
    "TEXT_SENT": None,
    # Event types that report no text outcome record nothing either
    "VOICE_COMPLETED": None,
    "MEDIA_DELIVERED": None,
    "RCS_DELIVERED": None,
    "TEXT_SOMETHING_NEW": None,
}


@pytest.mark.parametrize(("event_type", "status"), EXPECTED.items())
def test_each_event_type_maps_to_its_outcome(event_type, status):
    receipt = EumEventReader().read(eum_event(CHALLENGE_ID, 2, event_type, MESSAGE_ID, is_final=status is not None))
    if status is None:
        assert receipt is None
    else:
        assert receipt == EumReceipt(DeliveryReport(CHALLENGE_ID, MESSAGE_ID, status, 2), event_type, "NZ", True)


def test_the_documented_example_reads(clock):
    # The example of the EUM user guide, with this service's context
    document = {
        "eventType": "TEXT_SUCCESSFUL",
        "eventVersion": "1.0",
        "eventTimestamp": 1686975103470,
        "isFinal": True,
        "originationPhoneNumber": "+12065550152",
        "destinationPhoneNumber": "+14255550156",
        "isInternationalSend": False,
        "mcc": "310",
        "mnc": "800",
        "messageId": MESSAGE_ID,
        "messageRequestTimestamp": 1686975103170,
        "messageEncoding": "GSM",
        "messageType": "PROMOTIONAL",
        "messageStatus": "SUCCESSFUL",
        "messageStatusDescription": "Message has been accepted by phone carrier",
        "context": {"challengeId": CHALLENGE_ID},
        "totalMessageParts": 1,
        "totalMessagePrice": 0.09582,
        "totalCarrierFee": 0.0,
    }
    receipt = EumEventReader().read(json.dumps(document))
    assert receipt == EumReceipt(
        DeliveryReport(CHALLENGE_ID, MESSAGE_ID, DELIVERED, None), "TEXT_SUCCESSFUL", None, True
    )


@pytest.mark.parametrize(
    ("send", "expected"), [("0", 0), ("3", 3), ("007", 7), ("999999999", 999_999_999), (None, None)]
)
def test_context_send_is_read_as_a_number(send, expected):
    document = json.loads(eum_event(CHALLENGE_ID, None, "TEXT_DELIVERED", MESSAGE_ID))
    if send is not None:
        document["context"]["send"] = send
    receipt = EumEventReader().read(json.dumps(document))
    assert receipt is not None
    assert receipt.report.send == expected


@pytest.mark.parametrize("send", ["", "-1", "1.5", " 1", "1e3", "٣", "²", "1234567890", 3, 3.0, True, [], {}])
def test_a_context_send_that_is_not_digits_is_malformed(send):
    document = json.loads(eum_event(CHALLENGE_ID, None, "TEXT_DELIVERED", MESSAGE_ID))
    document["context"]["send"] = send
    with pytest.raises(InvalidRequestError):
        EumEventReader().read(json.dumps(document))


@pytest.mark.parametrize(
    "challenge_id",
    [
        None,
        "",
        "not-a-uuid",
        CHALLENGE_ID.upper(),
        CHALLENGE_ID + " ",
        "3f2b8c1e-7d4a-1e6b-9a0c-5b1d2e3f4a5b",
        42,
        [CHALLENGE_ID],
    ],
)
def test_a_challenge_id_this_service_could_not_have_issued_is_malformed(challenge_id):
    document = json.loads(eum_event(CHALLENGE_ID, 0, "TEXT_DELIVERED", MESSAGE_ID))
    document["context"]["challengeId"] = challenge_id
    with pytest.raises(InvalidRequestError):
        EumEventReader().read(json.dumps(document))


@pytest.mark.parametrize("event_type", ["TEXT_QUEUED", "TEXT_DELIVERED"])
def test_an_event_without_this_services_context_is_malformed_even_in_progress(event_type):
    document = json.loads(eum_event(CHALLENGE_ID, 0, event_type, MESSAGE_ID))
    for context in ({}, {"account": "bar"}, None, "x", [CHALLENGE_ID]):
        document["context"] = context
        with pytest.raises(InvalidRequestError):
            EumEventReader().read(json.dumps(document))
    del document["context"]
    with pytest.raises(InvalidRequestError):
        EumEventReader().read(json.dumps(document))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("eventType", None),
        ("eventType", 1),
        ("eventType", ""),
        ("eventType", "text_delivered"),
        ("eventType", "TEXT DELIVERED"),
        ("messageId", None),
        ("messageId", ""),
        ("messageId", 5),
        ("messageId", "a" * 65),
        ("messageId", "id with spaces"),
    ],
)
def test_an_event_with_a_malformed_field_is_malformed(field, value):
    document = json.loads(eum_event(CHALLENGE_ID, 0, "TEXT_DELIVERED", MESSAGE_ID))
    document[field] = value
    with pytest.raises(InvalidRequestError):
        EumEventReader().read(json.dumps(document))
    del document[field]
    with pytest.raises(InvalidRequestError):
        EumEventReader().read(json.dumps(document))


@pytest.mark.parametrize(
    "message",
    [
        "",
        "not json",
        "[]",
        "null",
        "1",
        '"text"',
        "{",
        "[" * 100_000,
        '{"a": ' + "9" * 5000 + "}",
        "x" * 300_000,
        None,
        b"{}",
        7,
    ],
)
def test_a_message_that_is_not_an_event_is_malformed(message):
    with pytest.raises(InvalidRequestError):
        EumEventReader().read(message)


@pytest.mark.parametrize(
    ("country", "expected"),
    [("NZ", "NZ"), ("nz", "NZ"), ("NZL", None), ("", None), ("N1", None), (64, None), (None, None)],
)
def test_the_country_is_two_letters_or_none(country, expected):
    document = json.loads(eum_event(CHALLENGE_ID, 0, "TEXT_DELIVERED", MESSAGE_ID))
    document["isoCountryCode"] = country
    receipt = EumEventReader().read(json.dumps(document))
    assert receipt is not None
    assert receipt.country == expected
    assert receipt.event_type == "TEXT_DELIVERED"


def test_a_non_final_event_is_progress_whatever_it_reports():
    # A carrier's temporary error (or an early success) that the service may still change records nothing: only
    # the send's final event is its outcome
    for event_type in ("TEXT_CARRIER_UNREACHABLE", "TEXT_UNKNOWN", "TEXT_SUCCESSFUL", "TEXT_DELIVERED"):
        document = eum_event(CHALLENGE_ID, 0, event_type, MESSAGE_ID, is_final=False)
        assert EumEventReader().read(document) is None, event_type


def test_is_final_is_reported_when_it_is_a_boolean():
    document = json.loads(eum_event(CHALLENGE_ID, 0, "TEXT_UNKNOWN", MESSAGE_ID, is_final=True))
    receipt = EumEventReader().read(json.dumps(document))
    assert receipt is not None
    assert receipt.final is True
    document["isFinal"] = "true"
    receipt = EumEventReader().read(json.dumps(document))
    assert receipt is not None
    assert receipt.final is None


def test_eum_event_builds_the_documented_shape():
    document = json.loads(eum_event(CHALLENGE_ID, 1, "TEXT_DELIVERED", MESSAGE_ID, country="GB", at=1_686_975_103.47))
    assert document["eventType"] == "TEXT_DELIVERED"
    assert document["messageStatus"] == "DELIVERED"
    assert document["eventTimestamp"] == 1686975103470
    assert document["isoCountryCode"] == "GB"
    assert document["context"] == {"challengeId": CHALLENGE_ID, "send": "1"}
    assert {"eventVersion", "isFinal", "messageId", "mcc", "mnc", "totalMessagePrice"} <= set(document)


# ------------------------------------------------------------------------------------------- Lambda events


def test_an_api_gateway_event_has_no_sns_records():
    api = {
        "resource": "/v1/delivery-status/{provider}",
        "httpMethod": "POST",
        "headers": {},
        "body": "{}",
        "requestContext": {},
    }
    assert sns_records(api) is None
    assert sns_records({}) is None
    assert sns_records(None) is None  # type: ignore[arg-type]
    assert sns_records([]) is None  # type: ignore[arg-type]


def test_an_sns_event_yields_each_records_sns_object(signer, clock):
    first, second = signed(signer, clock, "one"), signed(signer, clock, "two")
    assert sns_records(lambda_event(first, second)) == [first, second]
    assert sns_records({"Records": []}) == []


@pytest.mark.parametrize(
    "records",
    [
        None,
        "x",
        {"Sns": {}},
        [None],
        [{"EventSource": "aws:sqs", "body": "{}"}],
        [{"EventSource": "aws:sns"}],
        [{"EventSource": "aws:sns", "Sns": "{}"}],
        [{"EventSource": "aws:sns", "Sns": {}}, {"EventSource": "aws:s3", "s3": {}}],
    ],
)
def test_records_that_are_not_sns_records_are_malformed(records):
    with pytest.raises(InvalidRequestError):
        sns_records({"Records": records})


def test_a_signed_event_end_to_end(signer, clock, loader):
    # Given the Lambda event of a signed EUM delivery event
    event = lambda_event(
        signed(signer, clock, eum_event(CHALLENGE_ID, 1, "TEXT_CARRIER_UNREACHABLE", MESSAGE_ID, "AU"))
    )

    # When each record is verified and read
    checker, reader = verifier(clock, loader), EumEventReader()
    records = sns_records(event)
    assert records is not None
    receipts = []
    for record in records:
        checker.verify(record)
        receipts.append(reader.read(str(record["Message"])))

    # Then the failure is reported for the send it names
    assert receipts == [
        EumReceipt(DeliveryReport(CHALLENGE_ID, MESSAGE_ID, FAILED, 1), "TEXT_CARRIER_UNREACHABLE", "AU", True)
    ]


def test_new_certificate_is_valid_for_the_fake_clock(signer):
    now = datetime.fromtimestamp(FakeClock().now(), UTC)
    assert signer.certificate.not_valid_before_utc <= now <= signer.certificate.not_valid_after_utc
    assert new_certificate(signer.key).public_key() == signer.key.public_key()
