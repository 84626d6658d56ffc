"""The SMS vendors, one module each, found by name.

A vendor module holds everything about its vendor: the documented request and replies (its sender), and, for
vendors with status callbacks, their signature and how to read them (its :class:`DeliveryCallback`). The
module's file name is the provider's name in ``SmsProviders``; it names its sender class in ``SENDER`` and,
when the vendor has status callbacks, its reader in ``CALLBACK``. Modules are imported on first use, so a
stack pays only for the providers it routes to: an SNS-only stack never imports an HTTP adapter.

Adding a sending-only provider is its module: no registry line, since the package's files are the registry.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otp_core.sms.callbacks import DeliveryCallback
    from otp_core.sms.vendor import VendorSender

# SNS and End User Messaging are built from a boto3 client instead of a provider-secret section (their
# credentials are the function's role): vendors/sns.py, vendors/eum.py.
SNS = "sns"
EUM = "eum"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# The vendor modules of this package, listed from its directory without importing any of them.
KNOWN_PROVIDERS = frozenset(
    module.name for module in pkgutil.iter_modules(__path__) if _NAME.fullmatch(module.name) and not module.ispkg
)


def sender_class(name: str) -> type[VendorSender]:
    """The sender class of HTTP vendor ``name`` (one of :data:`KNOWN_PROVIDERS` but SNS), importing its module."""
    sender: type[VendorSender] = _module(name).SENDER
    return sender


def callback_class(name: str) -> type[DeliveryCallback] | None:
    """The callback reader of provider ``name``, or None when it has no status callbacks (or is unknown)."""
    if name not in KNOWN_PROVIDERS:
        return None
    reader: type[DeliveryCallback] | None = getattr(_module(name), "CALLBACK", None)
    return reader


def _module(name: str) -> ModuleType:
    if name not in KNOWN_PROVIDERS:
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")
