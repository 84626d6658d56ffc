"""Build the stack's SMS sender from its settings, importing only the configured vendor adapters."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from otp_core.errors import DependencyError
from otp_core.ports import Clock, SmsSender, SystemClock
from otp_core.providers.base import VendorConfig, VendorSender
from otp_core.providers.circuit import CircuitBreaker, CircuitStore, MemoryCircuitStore
from otp_core.providers.routing import FailoverSender, parse_country_routes
from otp_core.settings import Settings

# Provider name -> "module:class". Modules are imported on first use, so a stack pays only for its providers.
VENDORS: Mapping[str, str] = {
    "twilio": "otp_core.providers.twilio:TwilioSender",
    "bird": "otp_core.providers.bird:BirdSender",
    "messagemedia": "otp_core.providers.messagemedia:MessageMediaSender",
    "tnz": "otp_core.providers.tnz:TnzSender",
    "modica": "otp_core.providers.modica:ModicaSender",
    "vonage": "otp_core.providers.vonage:VonageSender",
    "webhook": "otp_core.providers.webhook:WebhookSender",
}
KNOWN_PROVIDERS = frozenset({"sns", *VENDORS})
_ENDPOINT = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)=(?P<url>https?://\S+)$")


class ProviderConfigError(DependencyError):
    """The SMS provider settings are unusable (unknown provider, malformed route or endpoint)."""


def parse_endpoints(text: str) -> dict[str, str]:
    """Parse ``"twilio=http://127.0.0.1:9001,bird=http://127.0.0.1:9002"`` into a name -> base URL map.

    Raises
    ------
    ValueError
        A malformed entry.
    """
    endpoints: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        match = _ENDPOINT.fullmatch(entry)
        if match is None:
            raise ValueError("invalid provider endpoint override")
        endpoints[match["name"]] = match["url"]
    return endpoints


def build_sender(
    settings: Settings,
    *,
    load_credentials: Callable[[], Mapping[str, Any]],
    dynamodb_client: Any | None,
    sns_client_factory: Callable[[], Any],
    clock: Clock | None = None,
    circuit_store: CircuitStore | None = None,
) -> SmsSender:
    """The SMS sender for this stack.

    Parameters
    ----------
    settings:
        ``sms_providers`` (default order), ``sms_country_routes``, timeouts, endpoint overrides, circuit
        breaker thresholds and ``delivery_callback_base_url``.
    load_credentials:
        Returns the provider secret as a dict keyed by provider name (read through the Powertools parameters
        cache); called on each send, never at build time, so an SNS-only stack never reads it.
    dynamodb_client:
        boto3 DynamoDB client for the shared circuit state (``settings.table_name``); None keeps the state in
        this process.
    sns_client_factory:
        Builds the boto3 SNS client, called only when ``sns`` is routed.
    clock:
        Time source for the circuit breaker and the webhook's ``sentAt``.
    circuit_store:
        Overrides the circuit store (tests).

    Returns
    -------
    SmsSender
        A :class:`~otp_core.providers.routing.FailoverSender` over the routed providers. With a single
        provider there is nothing to fail over to, so it has no circuit breaker and costs no table reads.

    Raises
    ------
    ProviderConfigError
        An unknown provider, or a malformed country route or endpoint override (503 for every send, and logged,
        rather than sending through an unintended route).
    """
    clock = clock or SystemClock()
    try:
        routes = parse_country_routes(settings.sms_country_routes)
        endpoints = parse_endpoints(settings.sms_provider_endpoints)
    except ValueError as exc:
        raise ProviderConfigError("the SMS provider configuration is invalid") from exc
    default = tuple(settings.sms_providers)
    names = list(dict.fromkeys([*default, *(name for route in routes.values() for name in route)]))
    unknown = [name for name in names if name not in KNOWN_PROVIDERS]
    if unknown or not default:
        raise ProviderConfigError("the SMS provider configuration names an unknown provider")

    providers: dict[str, SmsSender] = {}
    for name in names:
        if name == "sns":
            from otp_core.adapters.sns import SnsSmsSender

            providers[name] = SnsSmsSender(sns_client_factory())
        else:
            config = VendorConfig(
                load_credentials=load_credentials,
                timeout=settings.sms_provider_timeout_seconds,
                base_url=endpoints.get(name),
                callback_base_url=settings.delivery_callback_base_url,
                clock=clock,
            )
            providers[name] = _vendor_class(name)(config)

    breaker = None
    if len(names) > 1:
        store = circuit_store or _circuit_store(dynamodb_client, settings.table_name)
        breaker = CircuitBreaker(
            store,
            clock,
            threshold=settings.sms_circuit_failure_threshold,
            window_seconds=settings.sms_circuit_window_seconds,
            cooldown_seconds=settings.sms_circuit_cooldown_seconds,
        )
    return FailoverSender(
        providers,
        default_route=default,
        country_routes=routes,
        breaker=breaker,
        timeout=settings.sms_provider_timeout_seconds,
        budget=settings.sms_send_budget_seconds,
    )


def _vendor_class(name: str) -> type[VendorSender]:
    module_name, _, class_name = VENDORS[name].partition(":")
    cls: type[VendorSender] = getattr(importlib.import_module(module_name), class_name)
    return cls


def _circuit_store(dynamodb_client: Any | None, table: str) -> CircuitStore:
    if dynamodb_client is None:
        return MemoryCircuitStore()
    from otp_core.adapters.circuit import DynamoCircuitStore

    return DynamoCircuitStore(dynamodb_client, table)
