"""Circuit breaker for SMS providers: skip a provider that keeps failing, probe it again after a cool-down.

States, per provider:

- ``CLOSED``: the provider is used. Each failure is counted in a fixed window (``window_seconds``, aligned to
  the epoch); when a window holds ``threshold`` failures the circuit opens.
- ``OPEN``: the provider is skipped until ``open_until`` (``cooldown_seconds`` after opening).
- ``HALF_OPEN``: after the cool-down exactly one send, on whichever instance wins a conditional write, probes
  the provider. Success closes the circuit; failure opens it for another cool-down. A probe that never
  reports (its Lambda died) expires after ``probe_seconds`` and another instance may probe.

The state lives in a :class:`CircuitStore` shared by every Lambda instance (DynamoDB in a stack, see
``otp_core.adapters.circuit``). Each state change is one conditional write whose condition carries the rule,
so two instances can never both open, close or probe on the strength of a value they read earlier.

The breaker never blocks a send because of its own storage: if the store fails, the provider is tried.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from enum import StrEnum

from otp_core.observability import logger
from otp_core.ports import Clock

# Circuit items are housekeeping only: TTL removes them a day after the last change.
ITEM_TTL_SECONDS = 86_400


class CircuitStatus(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class CircuitState:
    """One provider's stored circuit: status, failures counted in ``window`` and the two deadlines."""

    status: CircuitStatus = CircuitStatus.CLOSED
    failures: int = 0
    window: int = 0
    open_until: int = 0
    probe_until: int = 0


class CircuitStore(ABC):
    """Shared circuit state. Every method that changes state is one atomic, conditional change."""

    @abstractmethod
    def read(self, provider: str) -> CircuitState:
        """The stored state; a provider never seen is ``CLOSED`` with no failures."""

    @abstractmethod
    def count_failure(self, provider: str, window: int, ttl: int) -> int:
        """Add one failure to ``window`` (starting it at one if the stored window is older); return the count."""

    @abstractmethod
    def open(self, provider: str, *, expected: CircuitStatus, open_until: int, threshold: int, ttl: int) -> bool:
        """Open the circuit if it is still ``expected``.

        From ``CLOSED`` the stored failures must also have reached ``threshold``. Returns whether this call
        made the change.
        """

    @abstractmethod
    def start_probe(self, provider: str, *, now: int, probe_until: int, ttl: int) -> bool:
        """Move to ``HALF_OPEN`` if the cool-down is over (or a previous probe expired); True for the winner."""

    @abstractmethod
    def close(self, provider: str, *, ttl: int) -> bool:
        """Close a ``HALF_OPEN`` circuit and forget its failures; True if this call made the change."""


@dataclass(frozen=True)
class Permit:
    """Leave to try one provider once; ``probe`` marks the half-open trial."""

    provider: str
    probe: bool = False


class CircuitBreaker:
    """Decides whether a provider may be tried, and records how the attempt went.

    Parameters
    ----------
    store:
        Where the state is shared.
    clock:
        Source of the current time (a fake in tests).
    threshold:
        Failures within one window that open the circuit.
    window_seconds:
        Length of the counting window.
    cooldown_seconds:
        How long an open circuit skips the provider.
    probe_seconds:
        How long a half-open probe may take before another instance may probe; defaults to the cool-down.
    """

    def __init__(
        self,
        store: CircuitStore,
        clock: Clock,
        *,
        threshold: int,
        window_seconds: int,
        cooldown_seconds: int,
        probe_seconds: int | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._threshold = threshold
        self._window = window_seconds
        self._cooldown = cooldown_seconds
        self._probe = probe_seconds or cooldown_seconds

    def acquire(self, provider: str) -> Permit | None:
        """A permit to try ``provider`` now, or None while its circuit is open (or another instance probes)."""
        now = self._clock.now()
        try:
            state = self._store.read(provider)
            if state.status is CircuitStatus.CLOSED:
                return Permit(provider)
            if state.status is CircuitStatus.OPEN and now < state.open_until:
                return None
            if state.status is CircuitStatus.HALF_OPEN and now < state.probe_until:
                return None
            won = self._store.start_probe(provider, now=now, probe_until=now + self._probe, ttl=now + ITEM_TTL_SECONDS)
        except Exception as exc:
            # The breaker exists to save time, never to lose a message: without its state, try the provider.
            logger.warning("circuit state unavailable", provider=provider, error_type=type(exc).__name__)
            return Permit(provider)
        if won:
            logger.info("circuit half-open", provider=provider)
            return Permit(provider, probe=True)
        return None

    def succeeded(self, permit: Permit) -> None:
        """Record a send the provider accepted (or answered properly); closes a half-open circuit."""
        if not permit.probe:
            # A success in CLOSED writes nothing: failures age out with their window.
            return
        try:
            if self._store.close(permit.provider, ttl=self._clock.now() + ITEM_TTL_SECONDS):
                logger.info("circuit closed", provider=permit.provider)
        except Exception as exc:
            logger.warning("circuit state unavailable", provider=permit.provider, error_type=type(exc).__name__)

    def failed(self, permit: Permit) -> None:
        """Record a provider failure; may open the circuit."""
        now = self._clock.now()
        ttl = now + ITEM_TTL_SECONDS
        try:
            if permit.probe:
                expected = CircuitStatus.HALF_OPEN
            else:
                if self._store.count_failure(permit.provider, now // self._window, ttl) < self._threshold:
                    return
                expected = CircuitStatus.CLOSED
            opened = self._store.open(
                permit.provider, expected=expected, open_until=now + self._cooldown, threshold=self._threshold, ttl=ttl
            )
        except Exception as exc:
            logger.warning("circuit state unavailable", provider=permit.provider, error_type=type(exc).__name__)
            return
        if opened:
            logger.warning("circuit opened", provider=permit.provider, cooldown_seconds=self._cooldown)


class MemoryCircuitStore(CircuitStore):
    """Circuit state in this process only: for tests, and for stacks without a table client.

    The same rules as the DynamoDB store, each change under one lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.states: dict[str, CircuitState] = {}

    def read(self, provider: str) -> CircuitState:
        with self._lock:
            return self.states.get(provider, CircuitState())

    def count_failure(self, provider: str, window: int, ttl: int) -> int:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            failures = state.failures + 1 if state.window == window else 1
            self.states[provider] = replace(state, failures=failures, window=window)
            return failures

    def open(self, provider: str, *, expected: CircuitStatus, open_until: int, threshold: int, ttl: int) -> bool:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            if state.status is not expected:
                return False
            if expected is CircuitStatus.CLOSED and state.failures < threshold:
                return False
            self.states[provider] = replace(state, status=CircuitStatus.OPEN, open_until=open_until)
            return True

    def start_probe(self, provider: str, *, now: int, probe_until: int, ttl: int) -> bool:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            ready = (state.status is CircuitStatus.OPEN and state.open_until <= now) or (
                state.status is CircuitStatus.HALF_OPEN and state.probe_until <= now
            )
            if not ready:
                return False
            self.states[provider] = replace(state, status=CircuitStatus.HALF_OPEN, probe_until=probe_until)
            return True

    def close(self, provider: str, *, ttl: int) -> bool:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            if state.status is not CircuitStatus.HALF_OPEN:
                return False
            self.states[provider] = CircuitState(window=state.window)
            return True
