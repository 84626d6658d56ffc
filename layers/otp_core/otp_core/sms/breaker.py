"""Circuit breaker for SMS providers: skip a provider that keeps failing, probe it again after a cool-down.

States, per provider:

- ``CLOSED``: the provider is used. Each failure is counted in a fixed window (``window_seconds``, aligned to
  the epoch); when a window holds ``threshold`` failures the circuit opens.
- ``OPEN``: the provider is skipped until ``open_until`` (``cooldown_seconds`` after opening).
- ``HALF_OPEN``: after the cool-down exactly one send, on whichever instance wins a conditional write, probes
  the provider. Success closes the circuit; failure opens it for another cool-down. A probe that never
  reports (its Lambda died) expires after ``probe_seconds`` and another instance may probe.

The rules are the pure functions below (:func:`admission`, :func:`counted_failures`, :func:`may_open`,
:func:`may_start_probe`, :func:`may_close`), asked the same questions by every :class:`CircuitStore`: the
DynamoDB store (:mod:`otp_core.sms.circuit_store`) turns each answer into the condition of one write, so two
instances can never both open, close or probe on the strength of a value they read earlier; the in-memory
store of the tests evaluates them under a lock.

The breaker never blocks a send because of its own storage: if the store fails, the provider is tried.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
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


class Admission(StrEnum):
    """What the stored state allows for one send: try the provider, skip it, or race to probe it."""

    TRY = "try"
    SKIP = "skip"
    PROBE = "probe"


# -- the rules ---------------------------------------------------------------------------------------------


def admission(state: CircuitState, now: int) -> Admission:
    """Whether a send at ``now`` may use the provider, must skip it, or may try to start the probe."""
    if state.status is CircuitStatus.CLOSED:
        return Admission.TRY
    if state.status is CircuitStatus.OPEN and now < state.open_until:
        return Admission.SKIP
    if state.status is CircuitStatus.HALF_OPEN and now < state.probe_until:
        return Admission.SKIP
    return Admission.PROBE


def may_start_probe(state: CircuitState, now: int) -> bool:
    """The cool-down is over, or the previous probe expired: the one write that moves to ``HALF_OPEN`` wins."""
    return (state.status is CircuitStatus.OPEN and state.open_until <= now) or (
        state.status is CircuitStatus.HALF_OPEN and state.probe_until <= now
    )


def counted_failures(state: CircuitState, window: int) -> int | None:
    """The failure count after one more failure in ``window``; None when the stored window is newer.

    The stored window's count grows; an older (or no) window restarts at one; a newer one means this clock is
    behind another instance's, and the failure is not counted rather than resetting a live window.
    """
    if state.window == window:
        return state.failures + 1
    if state.window < window:
        return 1
    return None


def may_open(state: CircuitState, expected: CircuitStatus, threshold: int) -> bool:
    """The circuit is still ``expected``; from ``CLOSED`` its failures must also have reached ``threshold``."""
    if state.status is not expected:
        return False
    return expected is not CircuitStatus.CLOSED or state.failures >= threshold


def may_close(state: CircuitState) -> bool:
    """Only a probing (``HALF_OPEN``) circuit closes; a success in ``CLOSED`` writes nothing."""
    return state.status is CircuitStatus.HALF_OPEN


# -- the store and the breaker ---------------------------------------------------------------------------


class CircuitStore(ABC):
    """Shared circuit state. Every method that changes state is one atomic change conditioned on the rule."""

    @abstractmethod
    def read(self, provider: str) -> CircuitState:
        """The stored state; a provider never seen is ``CLOSED`` with no failures."""

    @abstractmethod
    def count_failure(self, provider: str, window: int, ttl: int) -> int:
        """Count one failure in ``window`` (see :func:`counted_failures`); the new count, 0 when not counted."""

    @abstractmethod
    def open(self, provider: str, *, expected: CircuitStatus, open_until: int, threshold: int, ttl: int) -> bool:
        """Open the circuit if :func:`may_open`; returns whether this call made the change."""

    @abstractmethod
    def start_probe(self, provider: str, *, now: int, probe_until: int, ttl: int) -> bool:
        """Move to ``HALF_OPEN`` if :func:`may_start_probe`; True for the one caller that made the change."""

    @abstractmethod
    def close(self, provider: str, *, ttl: int) -> bool:
        """Close the circuit and forget its failures if :func:`may_close`; True if this call made the change."""


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
            decision = admission(self._store.read(provider), now)
            if decision is Admission.TRY:
                return Permit(provider)
            if decision is Admission.SKIP:
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
