"""Sends to an app's test numbers: nothing leaves the stack (see ``testNumbers`` in otp_core.apps)."""

from __future__ import annotations

from collections.abc import Callable

from otp_core.ports import SmsSender
from otp_core.records import OutgoingSms, SentSms

TEST_PROVIDER = "test"


class TestNumberSender(SmsSender):
    """Takes the place of every provider for a test number: no SMS, no provider call, no cost.

    ``sink`` sees each message (the local stack shows it in its outbox with ``"provider": "test"``); a deployed
    stack has none, so the message, which holds the fixed code, goes nowhere.
    """

    __test__ = False  # not a pytest class

    def __init__(self, sink: Callable[[OutgoingSms], object] | None = None) -> None:
        self._sink = sink

    def send(self, sms: OutgoingSms) -> SentSms:
        if self._sink is not None:
            self._sink(sms)
        return SentSms(TEST_PROVIDER, None)
