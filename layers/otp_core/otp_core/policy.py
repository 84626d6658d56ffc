"""Send caps and the lockout as pure rules over counters and a clock.

Both stores (DynamoDB and the in-memory fake) ask this module the same questions and turn the answers into
one conditional write, so the rules live here once:

- which counters a send charges and which locks it obeys (:func:`send_charge`), and which failure counter
  and locks a wrong code uses (:func:`failure_rule`), with the owner's allowance of the contract's Policy
  table;
- how many more events a sliding window admits (:func:`sliding_allowance`) and when the next one will be
  admitted (:func:`sliding_retry_after`);
- when failed verifications lock a number (:func:`locks_after_failure`).

Windows slide by the weighted estimate ``current + previous x (unexpired part of the previous window)``:
counters are stored per fixed window, and the previous window's count, which no longer grows, weighs in with
the share of it that still lies inside the sliding window. A burst across a window boundary therefore meets
the same cap as a burst inside one window.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otp_core.records import SendQuota
from otp_core.settings import Policy

if TYPE_CHECKING:  # the guards' modules load with the first send, not with every function
    from otp_core.fraud import FraudCharge, Trip
    from otp_core.spend import Budget, BudgetCharge

TEN_MINUTES = 600
HOUR = 3_600
DAY = 86_400


@dataclass(frozen=True)
class Counter:
    """One sliding-window counter a send is charged to.

    ``kind`` names the counter family (``SEND10``, ``OWNERDAY``, ``IPHOUR``...), ``subject`` the opaque keyed
    identifier it counts (never a number or an address in clear).
    """

    kind: str
    subject: str
    window: int
    cap: int

    def bucket(self, now: int) -> int:
        return now // self.window


@dataclass(frozen=True)
class SendCharge:
    """What one send at ``now`` is charged to, and the locks it must find open.

    ``fraud``: the destination buckets a new challenge counts in and is judged by (``None``: a resend, which
    is no new challenge); ``budgets``: the SMS budgets its parts are charged to. The caller's counters come
    first: a send over its own caps is refused before any guard looks at it.
    """

    counters: tuple[Counter, ...]
    locks: tuple[str, ...]
    now: int
    fraud: FraudCharge | None = None
    budgets: tuple[BudgetCharge, ...] = ()


@dataclass(frozen=True)
class SendReceipt:
    """What a stored send was charged to beyond the caller's counters: the budget shards (budget, shard,
    parts), for a refund or a failover's extra attempts, and the trips a ``monitor`` mode let through."""

    budget_shards: tuple[tuple[Budget, int, int], ...] = ()
    suspected: tuple[Trip, ...] = ()
    # How full the fullest budget is after this send, in percent of its cap (the 80 % alarm's metric).
    budget_used_percent: int = 0
    # The shard each counted bucket was charged in (bucket name, shard), for a refund.
    bucket_shards: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class FailureRule:
    """How a wrong code is counted: its sliding counter (cap = the lockout threshold), the locks it must find
    open, the lock it sets when it reaches the threshold, and for how long."""

    counter: Counter
    locks: tuple[str, ...]
    own_lock: str
    lockout_seconds: int


def send_charge(quota: SendQuota, policy: Policy) -> SendCharge:
    """The counters and locks of one send (see :func:`send_counters` and :func:`lock_subjects`)."""
    return SendCharge(
        tuple(send_counters(quota, policy)), tuple(lock_subjects(quota.number_key, quota.owner)), quota.now
    )


def failure_rule(number_key: str, owner: bool, policy: Policy) -> FailureRule:
    """How wrong codes of a challenge (to ``number_key``, by its owner or not) are counted and lock."""
    return FailureRule(
        counter=failure_counter(number_key, owner, policy),
        locks=tuple(lock_subjects(number_key, owner)),
        own_lock=own_lock_subject(number_key, owner),
        lockout_seconds=policy.lockout_seconds,
    )


def send_counters(quota: SendQuota, policy: Policy) -> list[Counter]:
    """The counters one SMS send is charged to.

    A send that names the owner of the enrolled number (``quota.owner``) draws on the owner's own allowance
    (``OWNER10`` / ``OWNERDAY``, and ``OWNERIP`` for its source address), which sends not naming the owner
    cannot spend; every other send draws on the shared caps (``SEND10`` / ``SENDDAY`` / ``IPHOUR``). The end
    user cap applies to both.
    """
    prefix = "OWNER" if quota.owner else "SEND"
    counters = [
        Counter(f"{prefix}10", quota.number_key, TEN_MINUTES, policy.max_sends_per_10_minutes),
        Counter(f"{prefix}DAY", quota.number_key, DAY, policy.max_sends_per_day),
    ]
    if quota.ip_key is not None:
        # Owners behind one address (carrier-grade NAT, an office) must not lose MFA to strangers' sign-ups
        # from it: their sends have an address allowance of their own too.
        kind = "OWNERIP" if quota.owner else "IPHOUR"
        counters.append(Counter(kind, quota.ip_key, HOUR, policy.max_sends_per_ip_per_hour))
    if quota.user_key is not None:
        # An end user may not spread sends over many numbers: the daily cap holds per user as well.
        counters.append(Counter("USERDAY", quota.user_key, DAY, policy.max_sends_per_day))
    return counters


def failure_counter(number_key: str, owner: bool, policy: Policy) -> Counter:
    """The counter of failed verifications a wrong code of this challenge is charged to."""
    kind = "OWNERFAIL" if owner else "FAIL"
    return Counter(kind, number_key, policy.lockout_window_seconds, policy.lockout_threshold)


def lock_subjects(number_key: str, owner: bool) -> list[str]:
    """The locks a challenge obeys, as ``<kind>#<number key>``.

    Owner challenges obey only the owner's lock, so other requesters' wrong guesses cannot lock the owner out;
    other challenges obey both locks, since a number whose owner's codes are being guessed is under attack.
    """
    if owner:
        return [f"OWNERLOCK#{number_key}"]
    return [f"LOCK#{number_key}", f"OWNERLOCK#{number_key}"]


def own_lock_subject(number_key: str, owner: bool) -> str:
    """The lock a failure of this challenge sets when it reaches the threshold."""
    return f"{'OWNERLOCK' if owner else 'LOCK'}#{number_key}"


def _weight(now: int, window: int) -> float:
    """Share of the previous fixed window still inside the sliding window that ends at ``now``."""
    return 1.0 - (now % window) / window


def _weighted_previous(previous: int, now: int, window: int) -> int:
    """The previous window's count that still lies in the sliding window, rounded up (never under-counts)."""
    return math.ceil(previous * _weight(now, window) - 1e-9)


def sliding_count(previous: int, current: int, now: int, window: int) -> int:
    """The sliding estimate of events in the last ``window`` seconds."""
    return current + _weighted_previous(previous, now, window)


def sliding_allowance(cap: int, previous: int, now: int, window: int) -> int:
    """How high the current window's count may go before this event: the event is admitted iff
    ``current < sliding_allowance(...)``."""
    return cap - _weighted_previous(previous, now, window)


def sliding_retry_after(cap: int, previous: int, current: int, now: int, window: int) -> int:
    """Seconds until one more event would be admitted, given the counts read now.

    Within the current window the previous count decays linearly; once the window ends the current count
    becomes the previous one.
    """
    elapsed = now % window
    room = cap - 1 - current  # how much of the previous window's weight may remain
    if room >= 0:
        if previous <= room:
            return 1
        # previous x (1 - f) <= room  <=>  f >= 1 - room / previous
        needed = math.ceil((1.0 - room / previous) * window)
        return max(1, needed - elapsed)
    # The current count must first become the previous one, then decay far enough.
    return max(1, window - elapsed + math.ceil((1.0 - (cap - 1) / current) * window))


def code_cutoff(now: int, policy: Policy) -> int:
    """The time a code's expiry is judged against: a challenge accepts codes while ``expires_at > cutoff``.

    Today that is ``now`` (no grace after expiry); a grace period would subtract it here, and every check,
    in the use case and in the stores' write conditions, follows.
    """
    del policy  # the policy will carry a grace period; the signature is already the one it needs
    return now


def locks_after_failure(previous: int, current_before: int, now: int, rule: FailureRule) -> bool:
    """True when this failed verification brings the sliding failure count to the lockout threshold."""
    counter = rule.counter
    return sliding_count(previous, current_before + 1, now, counter.window) >= counter.cap


# -- addresses ---------------------------------------------------------------------------------------------


def ip_subject(address: str) -> str:
    """The value per-IP caps count for an address: one IPv4 address, or the /64 network of an IPv6 address.

    IPv4-mapped IPv6 (``::ffff:198.51.100.71``) counts as its IPv4 address, so a second spelling gets no
    second allowance; hosts of one IPv6 /64 (what one subscriber line is given) share one allowance.

    Raises
    ------
    ValueError
        Not an IPv4 or IPv6 address (zone IDs included).
    """
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.scope_id is not None:
            raise ValueError("an IPv6 zone ID is not an address")
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
