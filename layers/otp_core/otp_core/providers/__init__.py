"""SMS providers: one adapter per vendor, routing with failover, a shared circuit breaker, callback signatures.

Wiring a stack needs only :func:`build_sender` (from :mod:`otp_core.providers.factory`). It is resolved on
first use, so modules that need a small part of this package (the callback signatures, the circuit types) do
not load the routing code, and vendor modules load only when a stack routes to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otp_core.providers.factory import build_sender

__all__ = ["build_sender"]


def __getattr__(name: str) -> Any:
    if name == "build_sender":
        from otp_core.providers.factory import build_sender

        return build_sender
    raise AttributeError(name)
