"""Build the stack's SMS sender from its settings, importing only the configured vendor modules."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from otp_core.errors import DependencyError
from otp_core.ports import Clock, SmsSender
from otp_core.settings import Settings
from otp_core.sms.breaker import CircuitBreaker, CircuitStore
from otp_core.sms.routing import FailoverSender, parse_country_routes
from otp_core.sms.vendor import VendorConfig
from otp_core.sms.vendors import EUM, KNOWN_PROVIDERS, SNS, sender_class

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


def stack_providers(settings: Settings) -> tuple[str, ...]:
    """The providers this stack holds credentials and permissions for: those its parameters route to (an
    app's routes may pick among them)."""
    try:
        routes = parse_country_routes(settings.sms_country_routes)
    except ValueError:
        routes = {}
    names = [*settings.sms_providers, *(name for route in routes.values() for name in route)]
    return tuple(name for name in dict.fromkeys(names) if name in KNOWN_PROVIDERS)


def build_sender(
    settings: Settings,
    *,
    load_credentials: Callable[[], Mapping[str, Any]],
    sns_client: Callable[[], Any],
    circuit_store: Callable[[], CircuitStore],
    clock: Clock,
    eum_client: Callable[[], Any] | None = None,
) -> SmsSender:
    """The SMS sender for this stack.

    Parameters
    ----------
    settings:
        ``sms_providers`` (default order), ``sms_country_routes``, timeouts, endpoint overrides, circuit
        breaker thresholds and ``delivery_callback_base_url``.
    load_credentials:
        Returns the provider secret as a dict keyed by provider name
        (:meth:`~otp_core.sms.secret.ProviderSecret.document`); called on each send, never at build time, so
        an SNS-only stack never reads it.
    sns_client:
        Builds the boto3 SNS client, called only when ``sns`` is routed.
    eum_client:
        Builds the boto3 End User Messaging SMS client, called only when ``eum`` is routed.
    circuit_store:
        Builds the shared circuit state (DynamoDB in a stack), called only when there is more than one
        provider to fail over between.
    clock:
        Time source for the circuit breaker and the webhook's ``sentAt``.

    Returns
    -------
    SmsSender
        A :class:`~otp_core.sms.routing.FailoverSender` over the routed providers. With a single provider
        there is nothing to fail over to, so it has no circuit breaker and costs no table reads.

    Raises
    ------
    ProviderConfigError
        An unknown provider, or a malformed country route or endpoint override (503 for every send, and logged,
        rather than sending through an unintended route).
    """
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
        if name == SNS:
            from otp_core.sms.vendors.sns import SnsSmsSender

            providers[name] = SnsSmsSender(sns_client())
        elif name == EUM:
            from otp_core.sms.vendors.eum import EumConfig, EumSmsSender

            if eum_client is None:
                raise ProviderConfigError("the SMS provider configuration is invalid")
            providers[name] = EumSmsSender(eum_client(), EumConfig.from_settings(settings, clock))
        else:
            config = VendorConfig(
                load_credentials=load_credentials,
                timeout=settings.sms_provider_timeout_seconds,
                base_url=endpoints.get(name),
                callback_base_url=settings.delivery_callback_base_url,
                clock=clock,
            )
            providers[name] = sender_class(name)(config)

    breaker = None
    if len(names) > 1:
        breaker = CircuitBreaker(
            circuit_store(),
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
