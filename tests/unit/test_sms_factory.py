"""The sender factory: configured providers only, lazy vendor imports, configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from otp_core.errors import DeliveryFailedError
from otp_core.records import OutgoingSms
from otp_core.settings import Settings
from otp_core.sms.breaker import CircuitStatus
from otp_core.sms.factory import ProviderConfigError, build_sender, parse_endpoints
from otp_core.sms.routing import FailoverSender
from otp_core.sms.vendors.sns import SnsSmsSender
from otp_core.sms.vendors.twilio import TwilioSender
from tests.fakes import FakeClock, MemoryCircuitStore

ROOT = Path(__file__).resolve().parents[2]


class FailingSns:
    """Stands in for the boto3 SNS client; every publish fails like an outage."""

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, **_: Any) -> dict[str, str]:
        from botocore.exceptions import EndpointConnectionError

        self.calls += 1
        raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")


def no_credentials() -> dict[str, Any]:
    raise AssertionError("an SNS-only sender must not read the provider secret")


def no_circuit_store() -> MemoryCircuitStore:
    raise AssertionError("a single-provider sender has nothing to fail over to, so no circuit")


def build(settings: Settings, **overrides: Any) -> Any:
    """build_sender with collaborators that need no AWS: the options a test does not care about."""
    options: dict[str, Any] = {
        "load_credentials": dict,
        "sns_client": object,
        "circuit_store": MemoryCircuitStore,
        "clock": FakeClock(),
    }
    return build_sender(settings, **{**options, **overrides})


def test_an_sns_only_stack_loads_no_vendor_module() -> None:
    # Run in a fresh interpreter: this test session has imported the vendor modules already.
    code = textwrap.dedent(
        """
        import sys
        from otp_core.ports import SystemClock
        from otp_core.settings import Settings
        from otp_core.sms.factory import build_sender

        sender = build_sender(
            Settings(), load_credentials=dict, sns_client=object, circuit_store=object, clock=SystemClock()
        )
        vendors = ("twilio", "bird", "messagemedia", "tnz", "modica", "vonage", "webhook")
        loaded = [name for name in vendors if f"otp_core.sms.vendors.{name}" in sys.modules]
        assert loaded == [], loaded
        # Nor the vendors' HTTP client, nor the circuit's table store, nor the callbacks
        for module in ("otp_core.sms.http", "otp_core.sms.circuit_store", "otp_core.sms.callbacks"):
            assert module not in sys.modules, module
        print(type(sender).__name__)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "otp_core")])}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "FailoverSender"


def test_the_sender_wraps_sns_without_a_circuit_when_it_is_the_only_provider() -> None:
    sns = FailingSns()
    sender = build(Settings(), load_credentials=no_credentials, sns_client=lambda: sns, circuit_store=no_circuit_store)
    sms = OutgoingSms(to="+14155552671", body="123456", sender_id=None, challenge_id="c")

    # Every send reaches SNS: with nothing to fail over to, a breaker would only refuse sends
    for _ in range(6):
        with pytest.raises(DeliveryFailedError):
            sender.send(sms)
    assert sns.calls == 6


def test_routed_providers_are_built_with_their_endpoint_overrides() -> None:
    settings = Settings(
        sms_providers=("sns", "twilio"),
        sms_country_routes="NZ:vonage",
        sms_provider_endpoints="twilio=http://127.0.0.1:9001",
    )
    sender = build(settings)

    assert isinstance(sender, FailoverSender)
    providers = sender._providers
    assert set(providers) == {"sns", "twilio", "vonage"}
    assert isinstance(providers["sns"], SnsSmsSender)
    assert isinstance(providers["twilio"], TwilioSender)
    assert providers["twilio"].base_url == "http://127.0.0.1:9001"
    assert providers["vonage"].base_url == "https://rest.nexmo.com"


def test_several_providers_share_a_circuit_breaker() -> None:
    store = MemoryCircuitStore()
    sns = FailingSns()
    settings = Settings(sms_providers=("sns", "webhook"), sms_circuit_failure_threshold=1)
    sender = build(settings, load_credentials=lambda: {}, sns_client=lambda: sns, circuit_store=lambda: store)
    sms = OutgoingSms(to="+14155552671", body="123456", sender_id=None, challenge_id="c")

    with pytest.raises(DeliveryFailedError):
        sender.send(sms)

    assert store.read("sns").status is CircuitStatus.OPEN
    assert store.read("webhook").status is CircuitStatus.OPEN


@pytest.mark.parametrize(
    "settings",
    [
        Settings(sms_providers=("sns", "carrier_pigeon")),
        Settings(sms_country_routes="NZ:pigeon"),
        Settings(sms_country_routes="New Zealand:tnz"),
        Settings(sms_provider_endpoints="twilio:127.0.0.1"),
    ],
)
def test_unusable_provider_settings_fail_the_build(settings: Settings) -> None:
    with pytest.raises(ProviderConfigError) as caught:
        build(settings)
    assert caught.value.status == 503


def test_parse_endpoints() -> None:
    assert parse_endpoints("twilio=http://127.0.0.1:9001, bird=https://bird.test/prefix") == {
        "twilio": "http://127.0.0.1:9001",
        "bird": "https://bird.test/prefix",
    }
    assert parse_endpoints("") == {}


def test_provider_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SMS_PROVIDERS": "twilio,sns",
            "SMS_COUNTRY_ROUTES": "NZ:tnz,modica",
            "SMS_PROVIDER_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sms-providers",
            "SMS_PROVIDER_TIMEOUT_SECONDS": "2.5",
            "SMS_CIRCUIT_FAILURE_THRESHOLD": "3",
            "DELIVERY_CALLBACK_BASE_URL": "https://api.example.com/api",
        }
    )
    assert settings.sms_providers == ("twilio", "sns")
    assert settings.sms_country_routes == "NZ:tnz,modica"
    assert settings.sms_provider_timeout_seconds == 2.5
    assert settings.sms_circuit_failure_threshold == 3
    assert settings.delivery_callback_base_url == "https://api.example.com/api"
