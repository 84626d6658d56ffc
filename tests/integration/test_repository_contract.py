"""One behaviour suite for both stores: the in-memory fake and the DynamoDB repository on DynamoDB Local.

The rules (sliding caps, the lockout, the owner's allowance, enrollment and proof conditions, attempt expiry)
live in otp_core.policy and in the stores' conditional writes; this suite checks that both stores enforce
them the same way, with explicit clocks, and that DynamoDB holds them under concurrent requests.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from otp_core.adapters.dynamodb import DynamoChallengeRepository
from otp_core.adapters.identity import DynamoIdentityRepository
from otp_core.errors import ConflictError, RateLimitedError
from otp_core.policy import failure_rule, lock_subjects, send_charge
from otp_core.ports import ChallengeRepository, IdentityRepository
from otp_core.records import (
    Authenticator,
    Challenge,
    ChallengeLink,
    ChallengeState,
    SendQuota,
    TrackedAttempt,
    VerifiedEffects,
    VerifyOutcome,
)
from otp_core.settings import Policy
from tests.fakes import InMemoryRepository

HASH, WRONG = "a" * 64, "b" * 64


@dataclass
class Store:
    """A repository pair under test, with the policy its rules are drawn from.

    Its methods call the repository the way the use cases do: the charge, rule and locks from otp_core.policy.
    """

    repository: ChallengeRepository
    identities: IdentityRepository
    policy: Policy

    def create(self, challenge: Challenge, now: int, link: ChallengeLink | None = None) -> None:
        quota = SendQuota(challenge.number_key, None, now, owner=challenge.owner)
        self.repository.create(challenge, send_charge(quota, self.policy), link)

    def refund(self, challenge: Challenge, now: int) -> None:
        quota = SendQuota(challenge.number_key, None, now, owner=challenge.owner)
        self.repository.refund_send(challenge, send_charge(quota, self.policy), delete=True)

    def fail(self, challenge: Challenge, now: int) -> VerifyOutcome:
        rule = failure_rule(challenge.number_key, challenge.owner, self.policy)
        return self.repository.record_failure(challenge, WRONG, now, rule)

    def verify(self, challenge: Challenge, now: int, effects: VerifiedEffects | None = None) -> VerifyOutcome:
        locks = tuple(lock_subjects(challenge.number_key, challenge.owner))
        return self.repository.mark_verified(
            challenge, HASH, now, locks=locks, claimable_until=now + 600, effects=effects
        )


@pytest.fixture(params=["memory", "dynamodb"])
def make_store(request: pytest.FixtureRequest) -> Callable[..., Store]:
    def build(**overrides: Any) -> Store:
        policy = Policy(**overrides)
        if request.param == "memory":
            repository = InMemoryRepository()
            return Store(repository, repository.identities, policy)
        stack = request.getfixturevalue("stack")
        client = boto3.client("dynamodb")
        return Store(
            DynamoChallengeRepository(client, stack.table, sleep=lambda _: None),
            DynamoIdentityRepository(client, stack.table),
            policy,
        )

    return build


def future_boundary(window: int) -> int:
    """A window boundary a little ahead of real time (DynamoDB Local deletes items whose TTL has passed)."""
    return (int(time.time()) // window + 2) * window


def challenge(now: int, number_key: str, *, owner: bool = False, max_attempts: int = 5, **fields: Any) -> Challenge:
    return Challenge(
        challenge_id=str(uuid.uuid4()),
        phone_number="+14155552671",
        action="signIn",
        user_id=fields.pop("user_id", None),
        scope=fields.pop("scope", None),
        code_hash=HASH,
        code_mask="123456",
        number_key=number_key,
        ip_key=None,
        message=None,
        sender_id=None,
        locale=None,
        created_at=now,
        expires_at=now + 600,
        max_attempts=max_attempts,
        enrolled_as="authenticator-1" if owner else None,
        **fields,
    )


def send(
    store: Store, now: int, number_key: str, *, owner: bool = False, link: ChallengeLink | None = None, **fields: Any
) -> Challenge:
    created = challenge(now, number_key, owner=owner, **fields)
    store.create(created, now, link)
    return created


def key() -> str:
    return uuid.uuid4().hex


# -- sliding send caps ----------------------------------------------------------------------------------------


def test_a_burst_across_a_window_boundary_meets_one_cap(make_store):
    # Given five sends (the 10-minute cap) in the last second of a window
    store = make_store()
    number, boundary = key(), future_boundary(600)
    for _ in range(5):
        send(store, boundary - 1, number)

    # When the next window has just opened, then the number is still capped
    with pytest.raises(RateLimitedError) as limited:
        send(store, boundary + 1, number)
    assert 1 <= limited.value.retry_after <= 600

    # And once the previous window has decayed enough, one more send goes out
    send(store, boundary + 121, number)


def test_the_owners_allowance_is_separate_from_the_numbers(make_store):
    store = make_store()
    number, now = key(), future_boundary(600) + 10
    for _ in range(5):
        send(store, now, number)
    with pytest.raises(RateLimitedError):
        send(store, now, number)

    for _ in range(5):
        send(store, now, number, owner=True)
    with pytest.raises(RateLimitedError):
        send(store, now, number, owner=True)


def test_a_refund_returns_the_send(make_store):
    store = make_store()
    number, now = key(), future_boundary(600) + 10
    sent = [send(store, now, number) for _ in range(5)]
    store.refund(sent[-1], now)

    send(store, now, number)
    assert store.repository.get(sent[-1].challenge_id) is None


# -- sliding lockout, owner's lock ----------------------------------------------------------------------------


def fail(store: Store, now: int, number: str, count: int, *, owner: bool = False) -> list[VerifyOutcome]:
    target = send(store, now, number, owner=owner, max_attempts=10)
    return [store.fail(target, now) for _ in range(count)]


def test_no_boundary_lets_twice_the_lockout_threshold_through(make_store):
    # Given nine failures (threshold 10 per hour) in the last seconds of a window
    store = make_store(max_sends_per_10_minutes=100, max_sends_per_day=100)
    number, boundary = key(), future_boundary(3600)
    assert fail(store, boundary - 5, number, 9) == [VerifyOutcome.WRONG] * 9

    # When guessing goes on just after the boundary
    target = send(store, boundary + 5, number, max_attempts=10)
    tenth = store.fail(target, boundary + 5)

    # Then the tenth failure locks the number for the lockout, for guesses, right codes and sends alike
    assert tenth is VerifyOutcome.WRONG
    with pytest.raises(RateLimitedError) as locked:
        store.fail(target, boundary + 6)
    assert locked.value.retry_after == 899
    with pytest.raises(RateLimitedError):
        store.verify(target, boundary + 6)
    with pytest.raises(RateLimitedError):
        send(store, boundary + 6, number)

    # And the lock ends after 15 minutes
    later = send(store, boundary + 5 + 900, number)
    assert store.verify(later, boundary + 5 + 900) is VerifyOutcome.VERIFIED


def test_other_requesters_cannot_lock_the_owner_out(make_store):
    # Given ten failures on challenges to a number that do not name its owner
    store = make_store(max_sends_per_10_minutes=100, max_sends_per_day=100)
    number, now = key(), future_boundary(3600) + 10
    fail(store, now, number, 10)
    with pytest.raises(RateLimitedError):
        send(store, now, number)

    # When the owner is challenged, then the owner's challenge is sent and verifies
    owners = send(store, now, number, owner=True)
    assert store.verify(owners, now) is VerifyOutcome.VERIFIED


def test_the_owners_failures_lock_everyone(make_store):
    store = make_store(max_sends_per_10_minutes=100, max_sends_per_day=100)
    number, now = key(), future_boundary(3600) + 10
    fail(store, now, number, 10, owner=True)

    with pytest.raises(RateLimitedError):
        send(store, now, number, owner=True)
    with pytest.raises(RateLimitedError):
        send(store, now, number)


# -- conditions of a verification -----------------------------------------------------------------------------


def test_an_expired_tracked_attempt_takes_no_challenge_and_verifies_none(make_store):
    store = make_store()
    now = future_boundary(600)
    attempt = TrackedAttempt(str(uuid.uuid4()), "user-1", "signIn", "CHALLENGE_REQUIRED", None, now, now + 60)
    store.identities.put_attempt(attempt, seen_device=False)
    link = ChallengeLink("user-1", attempt_id=attempt.attempt_id)
    linked = send(store, now, key(), link=link, user_id="user-1")

    # A verification after the attempt expired does not count, and no new challenge can join it
    effects = VerifiedEffects(attempt_id=attempt.attempt_id)
    assert store.verify(linked, now + 61, effects) is VerifyOutcome.INVALID
    with pytest.raises(ConflictError):
        send(store, now + 61, key(), link=link, user_id="user-1")
    assert store.repository.get(linked.challenge_id).state.value == "PENDING"


def test_a_step_up_proof_is_spent_once(make_store):
    store = make_store()
    now = future_boundary(600)
    proof = (str(uuid.uuid4()), now + 600)
    first, second = send(store, now, key()), send(store, now, key())

    effects = VerifiedEffects(consume_proof=proof)
    assert store.verify(first, now, effects) is VerifyOutcome.VERIFIED
    assert store.verify(second, now, effects) is VerifyOutcome.INVALID
    assert store.identities.token_used(proof[0])
    assert store.repository.get(second.challenge_id).attempts == 0


def test_an_enrollment_holds_only_against_the_authenticator_it_was_decided_on(make_store):
    store = make_store()
    now = future_boundary(600)
    user = f"user-{uuid.uuid4()}"
    current = store.identities.put_authenticator(Authenticator(str(uuid.uuid4()), user, "+14155552671", now, now))
    new = Authenticator(str(uuid.uuid4()), user, "+14155552672", now, now)
    first, stale = send(store, now, key()), send(store, now, key())

    replaced = VerifiedEffects(enroll=new, replaces=current.authenticator_id)
    assert store.verify(first, now, replaced) is VerifyOutcome.VERIFIED
    again = dataclasses.replace(replaced, enroll=dataclasses.replace(new, authenticator_id=str(uuid.uuid4())))
    assert store.verify(stale, now, again) is VerifyOutcome.ENROLL_CONFLICT

    stored = store.identities.get_authenticator(user)
    assert (stored.authenticator_id, stored.phone_number) == (new.authenticator_id, "+14155552672")
    assert store.repository.get(stale.challenge_id).attempts == 0  # nothing was written


def test_the_same_number_keeps_its_authenticator_and_another_is_new(make_store):
    store = make_store()
    user = f"user-{uuid.uuid4()}"
    first = store.identities.put_authenticator(Authenticator("id-1", user, "+14155552671", 1, 1))
    same = store.identities.put_authenticator(Authenticator("id-2", user, "+14155552671", 2, 2))
    other = store.identities.put_authenticator(Authenticator("id-3", user, "+14155552672", 3, 3))

    assert (first.authenticator_id, same.authenticator_id, same.verified_at) == ("id-1", "id-1", 2)
    assert other.authenticator_id == "id-3"
    assert store.identities.get_authenticator(user) == other


def test_allow_makes_a_device_known_for_its_action_only(make_store):
    store = make_store()
    now = future_boundary(600)
    attempt = TrackedAttempt(str(uuid.uuid4()), "user-1", "viewPage", "ALLOW", "device-1", now, now + 600)
    store.identities.put_attempt(attempt, seen_device=True)

    assert store.identities.is_known_device("user-1", "device-1", "viewPage")
    assert not store.identities.is_known_device("user-1", "device-1", "withdraw")


# -- cancel ---------------------------------------------------------------------------------------------------


def test_a_pending_challenge_cancels_once_and_reads_expired_from_then_on(make_store):
    # Given a pending challenge with nine minutes to go
    store = make_store()
    now = future_boundary(600)
    pending = send(store, now, key())

    # When it is cancelled
    cancelled = store.repository.cancel(pending.challenge_id, now + 60)

    # Then the cancel returns it as stored: EXPIRED as of the cancel, nothing else changed
    assert cancelled is not None
    assert cancelled == dataclasses.replace(pending, state=ChallengeState.EXPIRED, expires_at=now + 60)
    assert store.repository.get(pending.challenge_id) == cancelled
    assert cancelled.state_at(now + 60) is ChallengeState.EXPIRED

    # And a second cancel finds nothing pending
    assert store.repository.cancel(pending.challenge_id, now + 61) is None


def test_a_cancelled_challenge_takes_no_code(make_store):
    # Given a cancelled challenge, well before its original expiry
    store = make_store()
    now = future_boundary(600)
    pending = send(store, now, key())
    cancelled = store.repository.cancel(pending.challenge_id, now + 10)

    # When its right code comes, even judged against a cutoff before the cancel (a grace period), or a wrong one
    verified = store.verify(pending, now + 20)
    locks = tuple(lock_subjects(pending.number_key, pending.owner))
    in_grace = store.repository.mark_verified(
        pending, HASH, now + 20, locks=locks, claimable_until=now + 600, cutoff=now
    )
    wrong = store.fail(pending, now + 20)

    # Then none counts and nothing was written
    assert (verified, in_grace, wrong) == (VerifyOutcome.INVALID,) * 3
    assert store.repository.get(pending.challenge_id) == cancelled


def test_a_cancel_is_no_refund(make_store):
    # Given a number at its 10-minute cap of five sends
    store = make_store()
    number, now = key(), future_boundary(600) + 10
    sent = [send(store, now, number) for _ in range(5)]

    # When one of them is cancelled, then the number stays capped
    assert store.repository.cancel(sent[-1].challenge_id, now + 1) is not None
    with pytest.raises(RateLimitedError):
        send(store, now + 1, number)


def _verified(store: Store, now: int) -> tuple[str, int]:
    target = send(store, now, key())
    assert store.verify(target, now) is VerifyOutcome.VERIFIED
    return target.challenge_id, now + 1


def _claimed(store: Store, now: int) -> tuple[str, int]:
    challenge_id, later = _verified(store, now)
    assert store.repository.claim(challenge_id, "user-1", later).state is ChallengeState.CLAIMED
    return challenge_id, later


def _expired(store: Store, now: int) -> tuple[str, int]:
    # Still stored at its expiry: the cancel must refuse it by its expiresAt, not by its absence.
    target = send(store, now, key())
    return target.challenge_id, target.expires_at


def _exhausted(store: Store, now: int) -> tuple[str, int]:
    target = send(store, now, key(), max_attempts=1)
    assert store.fail(target, now) is VerifyOutcome.WRONG
    return target.challenge_id, now + 1


def _unknown(store: Store, now: int) -> tuple[str, int]:
    return str(uuid.uuid4()), now


@pytest.mark.parametrize("given", [_verified, _claimed, _expired, _exhausted, _unknown], ids=lambda f: f.__name__[1:])
def test_a_cancel_of_a_challenge_that_is_not_pending_is_refused_and_writes_nothing(make_store, given):
    # Given a challenge that is verified, claimed, expired, out of attempts or was never stored
    store = make_store()
    challenge_id, when = given(store, future_boundary(600))
    before = store.repository.get(challenge_id)
    assert (before is None) == (given is _unknown)

    # When it is cancelled, then there was nothing to cancel and the store is as it was (no item made up)
    assert store.repository.cancel(challenge_id, when) is None
    assert store.repository.get(challenge_id) == before


# -- claim ----------------------------------------------------------------------------------------------------


def test_a_claim_repeats_for_its_user_unless_only_the_first_may_succeed(make_store):
    store = make_store()
    # Given a verified challenge, claimed once by its user
    challenge_id, later = _verified(store, 1_000_000)
    first = store.repository.claim(challenge_id, "user-1", later, again=False)
    assert (first.state, first.claimed_by) == (ChallengeState.CLAIMED, "user-1")

    # Then the same user's claim again succeeds (the native claim is idempotent), another user's is refused, and
    # a claim that must be the first (the Authsignal facade's, which issues a token per claim) is refused
    assert store.repository.claim(challenge_id, "user-1", later + 1).claimed_by == "user-1"
    with pytest.raises(ConflictError):
        store.repository.claim(challenge_id, "user-2", later + 1)
    with pytest.raises(ConflictError):
        store.repository.claim(challenge_id, "user-1", later + 1, again=False)


def test_simultaneous_first_claims_succeed_once(make_store):
    store = make_store()
    challenge_id, later = _verified(store, 1_000_000)
    outcomes = race(6, lambda: store.repository.claim(challenge_id, "user-1", later, again=False))
    assert sum(isinstance(outcome, Challenge) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, ConflictError) for outcome in outcomes) == 5


# -- races on DynamoDB Local ----------------------------------------------------------------------------------


def race(count: int, work: Callable[[], object]) -> list[object]:
    barrier, results = threading.Barrier(count), []

    def run() -> None:
        barrier.wait()
        try:
            results.append(work())
        except Exception as exc:  # the outcome of each request is what the test inspects
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_sends_never_pass_the_cap(make_store):
    # Given twenty concurrent sends to one number whose 10-minute cap is five
    store = make_store()
    number, now = key(), future_boundary(600) + 10

    results = race(20, lambda: send(store, now, number))

    # Then at most five went out and every other one was refused as rate limited
    sent = [r for r in results if isinstance(r, Challenge)]
    assert 1 <= len(sent) <= 5
    assert all(isinstance(r, Challenge | RateLimitedError) for r in results)


def test_concurrent_failures_count_at_most_the_threshold_and_lock(make_store):
    # Given twenty concurrent wrong codes on challenges to one number (threshold ten)
    store = make_store(max_sends_per_10_minutes=100, max_sends_per_day=100)
    number, now = key(), future_boundary(3600) + 10
    targets = [send(store, now, number, max_attempts=10) for _ in range(20)]
    pending = iter(targets)
    lock = threading.Lock()

    def guess() -> object:
        with lock:
            target = next(pending)
        return store.fail(target, now)

    results = race(20, guess)

    # Then no more than ten failures were counted and the number ends locked
    counted = [r for r in results if r is VerifyOutcome.WRONG]
    assert 1 <= len(counted) <= 10
    assert all(r is VerifyOutcome.WRONG or isinstance(r, RateLimitedError) for r in results)
    if len(counted) == 10:
        with pytest.raises(RateLimitedError):
            send(store, now, number)


def test_an_owner_challenge_counts_only_while_its_authenticator_stands(make_store):
    store = make_store()
    now = future_boundary(600)
    user = f"user-{uuid.uuid4()}"
    current = store.identities.put_authenticator(Authenticator(str(uuid.uuid4()), user, "+14155552671", now, now))
    kept, replaced = send(store, now, key(), owner=True), send(store, now, key(), owner=True)

    standing = VerifiedEffects(still_enrolled=(user, current.authenticator_id))
    assert store.verify(kept, now, standing) is VerifyOutcome.VERIFIED
    store.identities.put_authenticator(Authenticator(str(uuid.uuid4()), user, "+14155552672", now, now))
    assert store.verify(replaced, now, standing) is VerifyOutcome.INVALID
    assert store.repository.get(replaced.challenge_id).attempts == 0


def test_retry_after_names_the_longest_wait(make_store):
    # Given a number whose 10-minute cap and day cap are both full
    store = make_store()
    number, start = key(), future_boundary(86_400) + 3_600
    for _ in range(5):
        send(store, start, number)
    for _ in range(5):
        send(store, start + 1_300, number)

    # When one more is asked for, then Retry-After is the day cap's wait
    with pytest.raises(RateLimitedError) as limited:
        send(store, start + 1_301, number)
    assert limited.value.retry_after > 3_600
