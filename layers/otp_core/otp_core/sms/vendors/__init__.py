"""The SMS vendors, one module each, and the registry that names them.

A vendor module holds everything about its vendor: the documented request and replies (its sender), and, for
vendors with status callbacks, their signature and how to read them (its :class:`DeliveryCallback`). Modules
are imported on first use, so a stack pays only for the providers it routes to: an SNS-only stack never
imports an HTTP adapter.

Adding a sending-only provider is its module plus one line in :data:`SENDERS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otp_core.sms.callbacks import DeliveryCallback
    from otp_core.sms.vendor import VendorSender

# Provider name -> "module:class" of its HTTP sender. SNS is the one vendor built from a boto3 client instead
# (otp_core.sms.vendors.sns).
SENDERS: Mapping[str, str] = {
    "twilio": "otp_core.sms.vendors.twilio:TwilioSender",
    "bird": "otp_core.sms.vendors.bird:BirdSender",
    "messagemedia": "otp_core.sms.vendors.messagemedia:MessageMediaSender",
    "tnz": "otp_core.sms.vendors.tnz:TnzSender",
    "modica": "otp_core.sms.vendors.modica:ModicaSender",
    "vonage": "otp_core.sms.vendors.vonage:VonageSender",
    "webhook": "otp_core.sms.vendors.webhook:WebhookSender",
}
# Provider name -> "module:class" of its delivery-status callback reader.
CALLBACKS: Mapping[str, str] = {
    "twilio": "otp_core.sms.vendors.twilio:TwilioCallback",
    "webhook": "otp_core.sms.vendors.webhook:WebhookCallback",
}
SNS = "sns"
KNOWN_PROVIDERS = frozenset({SNS, *SENDERS})


def sender_class(name: str) -> type[VendorSender]:
    """The sender class of HTTP vendor ``name`` (a key of :data:`SENDERS`), importing its module."""
    sender: type[VendorSender] = _load(SENDERS[name])
    return sender


def callback_class(name: str) -> type[DeliveryCallback] | None:
    """The callback reader of provider ``name``, or None when it has no status callbacks."""
    if name not in CALLBACKS:
        return None
    reader: type[DeliveryCallback] = _load(CALLBACKS[name])
    return reader


def _load(target: str) -> Any:
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
