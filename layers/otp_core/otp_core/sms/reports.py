"""The delivery-status use case: verify a provider's callback, then record the outcome on its challenge.

``POST /v1/delivery-status/{provider}`` is public (providers cannot send the API key): each provider's own
signature authenticates its reports (see the ``DeliveryCallback`` of its vendor module). A provider without
callbacks, or without credentials in this stack's provider secret, has no such route.
"""

from __future__ import annotations

from otp_core.errors import DependencyError, NotFoundError
from otp_core.observability import count, logger, tracer
from otp_core.ports import Clock, ConversionFeedback, DeliveryLog
from otp_core.records import ChallengeState
from otp_core.sms.callbacks import CallbackConfig, CallbackRequest, DeliveryReport
from otp_core.sms.delivery import DELIVERED
from otp_core.sms.secret import ProviderSecret
from otp_core.sms.vendors import callback_class


class DeliveryReports:
    """Receives providers' delivery reports.

    Parameters
    ----------
    secret:
        The provider secret; each provider's callbacks are verified with a field of its section.
    log:
        Where the outcome is recorded (only on the send it is about).
    clock:
        Source of the current time (the record's ``updatedAt``, and the webhook's timestamp check).
    base_url:
        The callbacks' public base URL (``delivery_callback_base_url``); empty to use the request's host.
    tolerance_seconds:
        How old a signed webhook report may be (``delivery_callback_tolerance_seconds``).
    feedback:
        Told when a delivered SMS's code was verified before its receipt arrived (the verify tells it otherwise).
    """

    def __init__(
        self,
        secret: ProviderSecret,
        log: DeliveryLog,
        clock: Clock,
        *,
        base_url: str,
        tolerance_seconds: int,
        feedback: ConversionFeedback | None = None,
    ) -> None:
        self._secret = secret
        self._log = log
        self._clock = clock
        self._config = CallbackConfig(clock, base_url, tolerance_seconds)
        self._feedback = feedback

    @tracer.capture_method(capture_response=False)
    def receive(self, provider: str, request: CallbackRequest) -> DeliveryReport | None:
        """Verify ``request`` as ``provider``'s callback and record what it reports.

        Returns the report, or None for a progress report (acknowledged, nothing recorded). Unknown or superseded
        messages are not an error either: a provider retrying them would change nothing.

        Raises
        ------
        NotFoundError
            No such provider, no callbacks for it, or no credential for them in this stack.
        UnauthorizedError
            The request is not one the provider signed.
        InvalidRequestError
            It is signed, but malformed.
        DependencyError
            The provider secret or the challenge store is unavailable (the provider retries).
        """
        reader = callback_class(provider)
        if reader is None or not self._secret.configured:
            raise NotFoundError("no such route")
        try:
            credential = self._secret.field(provider, reader.credential)
        except DependencyError as exc:
            raise DependencyError("delivery status is unavailable; retry later") from exc
        if credential is None:
            # A provider without credentials in this stack has no callbacks to receive.
            raise NotFoundError("no such route")
        method_field = reader.signature_method_field
        if method_field is None:
            report = reader(self._config).read(request, credential)
        else:
            # The configured method is enforced: a receipt signed another (weaker) way is refused.
            method = self._secret.field(provider, method_field)
            report = reader(self._config).read(request, credential, signature_method=method)  # type: ignore[call-arg]
        if report is None:
            return None
        self.record(provider, report)
        return report

    def record(self, provider: str, report: DeliveryReport) -> bool:
        """Record a verified report (any provider's, EUM's from its SNS events too), count it per country, and
        give the provider its conversion feedback when the code was verified already. True when recorded.

        Raises
        ------
        DependencyError
            The challenge store is unavailable (the provider retries).
        """
        challenge = self._log.record_outcome(
            report.challenge_id, provider, report.message_id, report.status, report.send, self._clock.now()
        )
        recorded = challenge is not None
        if challenge is not None:
            # Counted once per send (a replay records nothing), by the number's country, never the number.
            count("SmsDelivered" if report.status == DELIVERED else "SmsUndelivered", challenge.region)
            verified = challenge.state is ChallengeState.VERIFIED
            if verified and report.status == DELIVERED and report.message_id and self._feedback is not None:
                self._feedback.converted(provider, report.message_id)
        logger.info(
            "delivery status",
            provider=provider,
            challenge_id=report.challenge_id,
            status=report.status,
            recorded=recorded,
        )
        return recorded
