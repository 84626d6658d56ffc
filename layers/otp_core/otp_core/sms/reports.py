"""The delivery-status use cases: verify a provider's receipt, then record the outcome on its challenge.

``POST /v1/delivery-status/{provider}`` is public (providers cannot send the API key): each provider's own
signature authenticates its reports (see the ``DeliveryCallback`` of its vendor module). A provider without
callbacks, or without credentials in this stack's provider secret, has no such route. End User Messaging's
receipts arrive instead as SNS notifications from the configuration set's event destination, each verified by
its SNS signature (:class:`EumReceipts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from otp_core.errors import DependencyError, NotFoundError
from otp_core.observability import count, logger, metrics, tracer
from otp_core.ports import Clock, ConversionFeedback, DeliveryLog
from otp_core.records import ChallengeState
from otp_core.sms.callbacks import CallbackConfig, CallbackRequest, DeliveryReport
from otp_core.sms.delivery import DELIVERED
from otp_core.sms.secret import ProviderSecret
from otp_core.sms.vendors import callback_class

if TYPE_CHECKING:
    from otp_core.sms.sns_events import EumEventReader, SnsSignatureVerifier


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


class EumReceipts:
    """Receives End User Messaging's delivery events from its SNS topic (the configuration set's event
    destination): each notification's SNS signature, topic and age are verified, its event read, and its outcome
    recorded like any provider's receipt (once per send, counted per country, conversion feedback).

    A notification that fails verification, or a verified one that is malformed, is dropped and logged: SNS
    retrying it could not change the answer. Only a store or certificate that is unavailable raises, so Lambda's
    retries (and then SNS's) deliver the event again.

    Parameters
    ----------
    verifier, reader:
        :class:`~otp_core.sms.sns_events.SnsSignatureVerifier` and
        :class:`~otp_core.sms.sns_events.EumEventReader`.
    reports:
        Records each outcome (:meth:`DeliveryReports.record`).
    """

    def __init__(self, verifier: SnsSignatureVerifier, reader: EumEventReader, reports: DeliveryReports) -> None:
        self._verifier = verifier
        self._reader = reader
        self._reports = reports

    @tracer.capture_method(capture_response=False)
    def receive(self, records: list[Mapping[str, object]]) -> dict[str, int]:
        """Verify, read and record each SNS record's event; the counts of each result (for the invocation's log).

        Raises
        ------
        DependencyError
            The challenge store or the SNS signing certificate is unavailable (the event is delivered again;
            what was recorded already is not recorded twice).
        """
        from otp_core.errors import InvalidRequestError, UnauthorizedError

        counts = {"recorded": 0, "ignored": 0, "refused": 0, "malformed": 0}
        for record in records:
            try:
                self._verifier.verify(record)
                receipt = self._reader.read(str(record.get("Message")))
            except UnauthorizedError:
                counts["refused"] += 1
                metrics.add_metric(name="DeliveryReceiptRefused", unit="Count", value=1)
                continue
            except InvalidRequestError:
                counts["malformed"] += 1
                continue
            if receipt is None:
                counts["ignored"] += 1
                continue
            recorded = self._reports.record("eum", receipt.report)
            counts["recorded" if recorded else "ignored"] += 1
        logger.info(
            "delivery events",
            recorded=counts["recorded"],
            ignored=counts["ignored"],
            refused=counts["refused"],
            malformed=counts["malformed"],
        )
        return counts
