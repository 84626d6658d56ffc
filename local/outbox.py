"""The local stack's SMS outbox: every SMS the functions publish through SNS (and every send to an app's test
number, which reaches no provider), readable over HTTP.

A botocore hook watches ``sns.Publish`` calls made by any boto3 client created after it is installed; the
call still goes to moto, and the message is recorded once moto has accepted it, so a rejected publish does
not show up as delivered.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import boto3
from botocore import handlers

from otp_core.records import OutgoingSms

_PARAMS_KEY: Final = "local_outbox_publish"
_SENDER_ID_ATTRIBUTE: Final = "AWS.SNS.SMS.SenderID"


class Outbox:
    """Thread-safe, in-memory list of sent SMS messages, oldest first.

    Parameters
    ----------
    echo:
        Where to print each message as it is recorded (the local stack's console), or None to stay quiet.
    """

    def __init__(self, echo: TextIO | None = sys.stdout) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self.echo = echo

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """A copy of the recorded messages, newest last; only those sent to ``to`` when given."""
        with self._lock:
            return [dict(message) for message in self._messages if to is None or message["to"] == to]

    def clear(self) -> None:
        """Forget every recorded message."""
        with self._lock:
            self._messages.clear()

    def record_test(self, sms: OutgoingSms, now: datetime | None = None) -> dict[str, Any]:
        """Record a send to an app's test number, which no provider sees (``"provider": "test"``)."""
        message = {
            "to": sms.to,
            "body": sms.body,
            "senderId": sms.sender_id,
            "provider": "test",
            "sentAt": _sent_at(now),
        }
        with self._lock:
            self._messages.append(message)
        self._print(message)
        return dict(message)

    def record_publish(self, params: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any] | None:
        """Record an ``sns.Publish`` call's parameters if they send an SMS (a PhoneNumber, not a topic).

        Returns the recorded message, or None for a publish to a topic.
        """
        phone_number = params.get("PhoneNumber")
        if not phone_number:
            return None
        sender = (params.get("MessageAttributes") or {}).get(_SENDER_ID_ATTRIBUTE) or {}
        message = {
            "to": str(phone_number),
            "body": str(params.get("Message", "")),
            "senderId": sender.get("StringValue"),
            "provider": "sns",
            "sentAt": _sent_at(now),
        }
        with self._lock:
            self._messages.append(message)
        self._print(message)
        return dict(message)

    def before_publish(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        """botocore ``before-parameter-build.sns.Publish`` hook: keep the caller's parameters for later."""
        context[_PARAMS_KEY] = dict(params)

    def after_publish(self, http_response: Any, context: Mapping[str, Any], **_: Any) -> None:
        """botocore ``after-call.sns.Publish`` hook: record the SMS once SNS (moto) has accepted it."""
        params = context.get(_PARAMS_KEY)
        if params is not None and getattr(http_response, "status_code", 500) < 300:
            self.record_publish(params)

    def _print(self, message: Mapping[str, Any]) -> None:
        if self.echo is None:
            return
        sender = f" from {message['senderId']}" if message["senderId"] else ""
        print(f"[outbox] SMS to {message['to']}{sender}: {message['body']}", file=self.echo, flush=True)


def _sent_at(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


OUTBOX: Final = Outbox()
"""The process-wide outbox: botocore hooks are process-wide too."""

_installed: set[int] = set()
_install_lock = threading.Lock()


def install_outbox_hook(outbox: Outbox = OUTBOX) -> None:
    """Make every boto3 client created from now on report its SMS publishes to ``outbox``.

    botocore copies a session's event hooks into each client when the client is created, so this must run
    before the handler modules create their clients (they are imported lazily, after this). The hooks go into
    botocore's built-in handler list, which every new session starts from, and onto boto3's default session
    if it already exists. Calling it again for the same outbox does nothing.
    """
    with _install_lock:
        if id(outbox) in _installed:
            return
        specs: list[tuple[str, Callable[..., None]]] = [
            ("before-parameter-build.sns.Publish", outbox.before_publish),
            ("after-call.sns.Publish", outbox.after_publish),
        ]
        handlers.BUILTIN_HANDLERS.extend(specs)
        if boto3.DEFAULT_SESSION is not None:
            for event, hook in specs:
                boto3.DEFAULT_SESSION.events.register(event, hook)
        _installed.add(id(outbox))


def uninstall_outbox_hook(outbox: Outbox) -> None:
    """Undo ``install_outbox_hook`` for sessions created from now on (clients that exist keep their hooks)."""
    with _install_lock:
        handlers.BUILTIN_HANDLERS[:] = [
            spec for spec in handlers.BUILTIN_HANDLERS if getattr(spec[1], "__self__", None) is not outbox
        ]
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-parameter-build.sns.Publish", outbox.before_publish)
            boto3.DEFAULT_SESSION.events.unregister("after-call.sns.Publish", outbox.after_publish)
        _installed.discard(id(outbox))
