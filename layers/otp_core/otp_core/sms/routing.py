"""Routing and failover across SMS providers.

A send picks the route for the destination's country (``sms_country_routes``, e.g. ``NZ:tnz,modica;AU:
messagemedia``; a country route replaces the default list, it does not extend it) or the default order
(``sms_providers``), then tries each provider in turn with the *same* :class:`~otp_core.ports.OutgoingSms`, so
the user never holds two different live codes.

What moves on to the next provider, and what does not:

- :class:`~otp_core.errors.InvalidPhoneNumberError` stops at once: the vendor documented the number as
  invalid or unreachable, no other provider will do better, and the caller gets a 400.
- A refusal of this request (``ProviderError.counts_against_circuit`` False: the request's sender ID, its text,
  or a destination country the account may not send to) fails over, since the next provider may use another
  sender or route, but is recorded as a healthy answer, not a failure: the request caused it, so a caller
  sending bad sender IDs cannot open the circuit of a provider everyone else depends on.
- Any other failure fails over: errors that cannot have delivered (connection refused, DNS, TLS, 429,
  documented "not accepted" 4xx/5xx, authentication or configuration problems at that provider), and also a
  timeout *after* the request was sent. That last one is ambiguous (the vendor may have queued the message),
  and failing over is still right: the next provider sends the same code, so the worst case is the same code
  arriving twice, which neither confuses the user nor weakens anything (one live code per challenge, and
  verification counts attempts, not messages). Stopping instead would leave the user without a code whenever
  a provider hangs. If every provider then fails, the send is refunded and a new challenge is deleted, so a
  late copy of the code is inert.

Each attempt gets ``min(per-attempt timeout, time left in the send budget)``; the budget (default 7 s) keeps the
whole send well inside the 10 s function timeout. A provider whose circuit is open is skipped without a
network call (see :mod:`otp_core.sms.breaker`); when every provider is skipped or fails, the send raises
:class:`~otp_core.errors.DeliveryFailedError` (502, refunded by the service).

Metrics: ``SmsSent``, ``SmsFailed`` (provider failures only; a bad number is not one), ``SmsRejected`` (a
provider refused the request's sender, text or destination) and ``SmsFailover`` (an attempt on a provider after
an earlier one failed or refused), each with dimensions ``provider`` and ``country``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence

import phonenumbers
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from otp_core.errors import DeliveryFailedError, InvalidPhoneNumberError
from otp_core.observability import logger, metrics, tracer
from otp_core.ports import SmsSender
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.breaker import CircuitBreaker, Permit
from otp_core.sms.vendor import UNAVAILABLE_DETAIL, ProviderError, VendorSender

UNKNOWN_COUNTRY = "ZZ"
# Below this many seconds left in the budget an attempt could not even connect; stop instead.
MIN_ATTEMPT_SECONDS = 0.05
_PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REGION = re.compile(r"^[A-Z]{2}$")


def parse_country_routes(text: str) -> dict[str, tuple[str, ...]]:
    """Parse ``"NZ:tnz,modica;AU:messagemedia"`` into ``{"NZ": ("tnz", "modica"), "AU": ("messagemedia",)}``.

    Raises
    ------
    ValueError
        A malformed entry, region or provider name, or a region listed twice.
    """
    routes: dict[str, tuple[str, ...]] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        region, separator, names = entry.partition(":")
        region = region.strip().upper()
        providers = tuple(name.strip() for name in names.split(",") if name.strip())
        if not separator or not _REGION.fullmatch(region) or not providers or region in routes:
            raise ValueError(f"invalid country route: {entry!r}")
        if not all(_PROVIDER_NAME.fullmatch(name) for name in providers):
            raise ValueError(f"invalid provider name in country route for {region}")
        routes[region] = providers
    return routes


def country_of(phone_number: str) -> str:
    """ISO 3166 region of an E.164 number, or ``ZZ`` when libphonenumber cannot tell."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone_number, None))
    except phonenumbers.NumberParseException:
        return UNKNOWN_COUNTRY
    return region or UNKNOWN_COUNTRY


def emit(name: str, provider: str, country: str) -> None:
    """One dimensioned count, flushed on its own.

    ``single_metric`` writes its own EMF document: dimensions added to the shared ``metrics`` object would
    apply to every metric of the invocation, which is not what a per-provider count means.
    """
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="provider", value=provider)
        metric.add_dimension(name="country", value=country)


class FailoverSender(SmsSender):
    """Tries providers in order until one accepts the message.

    Parameters
    ----------
    providers:
        Senders by provider name (every name used by a route).
    default_route:
        Provider names in failover order, for countries without their own route.
    country_routes:
        Per-country provider orders, keyed by ISO 3166 alpha-2 region.
    breaker:
        Shared circuit breaker; None tries every provider every time (single-provider stacks).
    timeout:
        Per-attempt timeout in seconds, passed to :class:`~otp_core.sms.vendor.VendorSender` adapters.
    budget:
        Seconds the whole send may take across attempts.
    monotonic:
        Clock for the budget (tests pass a fake).
    """

    def __init__(
        self,
        providers: Mapping[str, SmsSender],
        *,
        default_route: Sequence[str],
        country_routes: Mapping[str, Sequence[str]] | None = None,
        breaker: CircuitBreaker | None = None,
        timeout: float = 3.0,
        budget: float = 7.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        routes = {region: tuple(route) for region, route in (country_routes or {}).items()}
        missing = {name for route in (tuple(default_route), *routes.values()) for name in route} - set(providers)
        if missing or not default_route:
            raise ValueError("every routed provider needs a sender, and the default route must not be empty")
        self._providers = dict(providers)
        self._default = tuple(default_route)
        self._routes = routes
        self._breaker = breaker
        self._timeout = timeout
        self._budget = budget
        self._monotonic = monotonic

    def route_for(self, phone_number: str) -> tuple[str, tuple[str, ...]]:
        """The destination's country and the provider order used for it."""
        country = country_of(phone_number)
        return country, self._routes.get(country, self._default)

    @tracer.capture_method(capture_response=False)
    def send(self, sms: OutgoingSms) -> SentSms:
        """Send ``sms`` through the first provider that accepts it.

        Raises
        ------
        InvalidPhoneNumberError
            A provider documented the number as invalid or unreachable; no other provider was tried.
        DeliveryFailedError
            Every provider was skipped (open circuit) or failed, or the budget ran out.
        """
        country, route = self.route_for(sms.to)
        deadline = self._monotonic() + self._budget
        last_error: BaseException | None = None
        attempts = 0
        for name in route:
            remaining = deadline - self._monotonic()
            if remaining < MIN_ATTEMPT_SECONDS:
                logger.warning("sms send budget exhausted", challenge_id=sms.challenge_id, provider=name)
                break
            permit = self._breaker.acquire(name) if self._breaker is not None else Permit(name)
            if permit is None:
                logger.info("sms provider skipped: circuit open", provider=name, country=country)
                continue
            if attempts:
                emit("SmsFailover", name, country)
            attempts += 1
            try:
                sent = self._attempt(self._providers[name], sms, min(self._timeout, remaining))
            except InvalidPhoneNumberError as refused:
                # The provider answered as documented: it is healthy, and the number is the problem. Earlier
                # attempts of this send may still have delivered (and billed): the caller is told how many.
                self._report(permit, ok=True)
                logger.info("sms provider rejected the number", provider=name, country=country)
                refused.attempts = attempts
                raise
            except Exception as exc:
                # Whatever went wrong here (outage, misconfiguration, a refusal of this request, even a bug in
                # one adapter), another provider may still deliver the same code.
                last_error = exc
                self._record_failure(permit, name, country, sms, exc)
                continue
            self._report(permit, ok=True)
            emit("SmsSent", name, country)
            logger.info("sms accepted", provider=name, country=country, challenge_id=sms.challenge_id)
            return SentSms(provider=sent.provider or name, message_id=sent.message_id, attempts=attempts)
        logger.warning("sms delivery failed on every provider", country=country, attempts=attempts)
        raise DeliveryFailedError(UNAVAILABLE_DETAIL, attempts=attempts) from last_error

    def _record_failure(self, permit: Permit, name: str, country: str, sms: OutgoingSms, exc: Exception) -> None:
        """Report a failed attempt to the breaker, metrics and logs, by whose fault it was."""
        reason = getattr(exc, "reason", type(exc).__name__)
        if isinstance(exc, ProviderError) and not exc.counts_against_circuit:
            # The provider answered as documented, refusing what this request asked for: it is healthy, and
            # a caller choosing bad sender IDs or texts must not be able to open its circuit for everyone.
            self._report(permit, ok=True)
            emit("SmsRejected", name, country)
            logger.info(
                "sms provider refused the message",
                provider=name,
                country=country,
                challenge_id=sms.challenge_id,
                reason=reason,
            )
            return
        self._report(permit, ok=False)
        emit("SmsFailed", name, country)
        logger.warning(
            "sms provider failed",
            provider=name,
            country=country,
            challenge_id=sms.challenge_id,
            reason=reason,
            ambiguous=bool(getattr(exc, "ambiguous", False)),
        )

    def _attempt(self, provider: SmsSender, sms: OutgoingSms, timeout: float) -> SentSms:
        if isinstance(provider, VendorSender):
            return provider.send_within(sms, timeout)
        return provider.send(sms)

    def _report(self, permit: Permit, *, ok: bool) -> None:
        if self._breaker is None:
            return
        if ok:
            self._breaker.succeeded(permit)
        else:
            self._breaker.failed(permit)
