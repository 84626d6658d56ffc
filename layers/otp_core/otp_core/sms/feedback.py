"""Conversion feedback: tell the provider that sent a challenge's SMS that its code was verified.

EUM (``PutMessageFeedback`` ``RECEIVED``) and Twilio (the Message Feedback resource, ``Outcome=confirmed``) learn
which messages converted, which is how they judge a route's quality. The verify tells them when the delivery
receipt (with the provider's message ID) arrived before the code; otherwise the receipt does, when it arrives
(otp_core.sms.reports). It is best effort within a second: a provider that does not answer never fails or holds
up a verify, and a provider without a feedback API is told nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from otp_core.observability import logger
from otp_core.ports import ConversionFeedback

# Seconds a feedback call may take: it runs on the verify's response path.
FEEDBACK_TIMEOUT_SECONDS = 1.0


class ProviderFeedback(ConversionFeedback):
    """Dispatches feedback to the provider that sent the message.

    Parameters
    ----------
    providers:
        Provider name -> a function that builds its feedback call (``message_id -> bool``), called once, on
        that provider's first feedback (a stack pays only for the providers whose messages converted).
    """

    def __init__(self, providers: Mapping[str, Callable[[], Callable[[str], bool]]]) -> None:
        self._factories = dict(providers)
        self._built: dict[str, Callable[[str], bool]] = {}

    def converted(self, provider: str, message_id: str) -> None:
        factory = self._factories.get(provider)
        if factory is None:
            return
        try:
            call = self._built.get(provider)
            if call is None:
                call = self._built[provider] = factory()
            sent = call(message_id)
        except Exception as exc:  # never fail a verify because feedback failed
            logger.warning("conversion feedback failed", provider=provider, error_type=type(exc).__name__)
            return
        if sent:
            logger.info("conversion feedback sent", provider=provider)
