"""In-memory stand-ins for the core's ports, with the same atomicity as the real adapters."""

from __future__ import annotations

import builtins
import dataclasses
import functools
import re
import threading
from collections import defaultdict
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from otp_core import fraud, policy, spend
from otp_core.adapters.kms import der_to_raw_signature
from otp_core.apps import ApiKey, AppRecord, KeyGrant
from otp_core.errors import (
    ConflictError,
    DeliveryFailedError,
    DependencyError,
    DestinationBlockedError,
    InvalidPhoneNumberError,
    NotFoundError,
    RateLimitedError,
    SendBudgetExceededError,
)
from otp_core.fraud import Activity, Block, Bucket, Guard, Mode, Reason, Rules, Slot, Trip
from otp_core.policy import FailureRule, SendCharge, SendReceipt
from otp_core.ports import (
    AppStore,
    ChallengeRepository,
    Clock,
    DeliveryLog,
    FraudStore,
    IdentityRepository,
    PublicKeySource,
    Signer,
    SmsSender,
)
from otp_core.records import (
    Authenticator,
    Challenge,
    ChallengeLink,
    ChallengeState,
    Delivery,
    OutgoingSms,
    SentSms,
    TrackedAttempt,
    VerifiedEffects,
    VerifyOutcome,
)
from otp_core.sms import breaker
from otp_core.sms.breaker import CircuitState, CircuitStatus, CircuitStore

# A fixed instant one hour into a UTC day (and at the start of every shorter window): tests that count
# windows never depend on the time of day they run at. Token checks take the same clock.
EPOCH = 1_799_971_200 + 3_600


class FakeClock(Clock):
    def __init__(self, now: int | None = None) -> None:
        self.current = EPOCH if now is None else now

    def now(self) -> int:
        return self.current

    def advance(self, seconds: int) -> None:
        self.current += seconds


class FakeDeliveryLog(DeliveryLog):
    """The table's rules of otp_core.sms.delivery over challenges held in memory: a receipt is recorded only for
    a challenge's latest send, once per send; ``undelivered`` counts a challenge whose latest SMS failed."""

    def __init__(self, *challenges: Challenge) -> None:
        self.challenges: dict[str, Challenge] = {c.challenge_id: c for c in challenges}
        self.outcomes: list[tuple[str, str, str | None, str, int | None, int]] = []
        self.undelivered: dict[str, int] = defaultdict(int)

    def record_outcome(
        self, challenge_id: str, provider: str, message_id: str | None, status: str, send: int | None, at: int
    ) -> Challenge | None:
        challenge = self.challenges.get(challenge_id)
        if challenge is None or (send is not None and send != challenge.resends):
            return None
        previous = challenge.delivery
        if (
            previous is not None
            and previous.status in ("delivered", "failed")
            and (send is None or previous.send == send)
        ):
            return None
        was_failed = previous is not None and previous.status == "failed" and previous.send is not None
        self.undelivered[challenge_id] += (
            1 if status == "failed" and not was_failed else -1 if was_failed and status == "delivered" else 0
        )
        recorded = dataclasses.replace(challenge, delivery=Delivery(status, provider, message_id, send))
        self.challenges[challenge_id] = recorded
        self.outcomes.append((challenge_id, provider, message_id, status, send, at))
        return recorded


class MemoryCircuitStore(CircuitStore):
    """Circuit state in this process, each change under one lock, decided by the rules of otp_core.sms.breaker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.states: dict[str, CircuitState] = {}

    def read(self, provider: str) -> CircuitState:
        with self._lock:
            return self.states.get(provider, CircuitState())

    def count_failure(self, provider: str, window: int, ttl: int) -> int:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            failures = breaker.counted_failures(state, window)
            if failures is None:
                return 0
            self.states[provider] = dataclasses.replace(state, failures=failures, window=window)
            return failures

    def open(self, provider: str, *, expected: CircuitStatus, open_until: int, threshold: int, ttl: int) -> bool:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            if not breaker.may_open(state, expected, threshold):
                return False
            self.states[provider] = dataclasses.replace(state, status=CircuitStatus.OPEN, open_until=open_until)
            return True

    def start_probe(self, provider: str, *, now: int, probe_until: int, ttl: int) -> bool:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            if not breaker.may_start_probe(state, now):
                return False
            self.states[provider] = dataclasses.replace(state, status=CircuitStatus.HALF_OPEN, probe_until=probe_until)
            return True

    def close(self, provider: str, *, ttl: int) -> bool:
        with self._lock:
            state = self.states.get(provider, CircuitState())
            if not breaker.may_close(state):
                return False
            self.states[provider] = CircuitState(window=state.window)
            return True


class FakeSender(SmsSender):
    def __init__(self, provider: str = "fake") -> None:
        self.provider = provider
        self.sent: list[OutgoingSms] = []
        self.fail = False
        self.refuse_numbers = False

    def send(self, sms: OutgoingSms) -> SentSms:
        if self.fail:
            raise DeliveryFailedError("provider down")
        if self.refuse_numbers:
            raise InvalidPhoneNumberError("the provider refused the number")
        self.sent.append(sms)
        return SentSms(provider=self.provider, message_id=str(len(self.sent)))

    def last_code(self) -> str:
        return re.findall(r"\b[0-9]{4,10}\b", self.sent[-1].body)[0]


class FakeSigner(Signer, PublicKeySource):
    """A real P-256 key in memory: tokens it signs verify like KMS-signed ones."""

    def __init__(self, key_id: str = "test-key") -> None:
        self.key_id = key_id
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.calls = 0

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        return der_to_raw_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())))

    def public_key_der(self, key_id: str) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class InMemoryRepository(ChallengeRepository):
    """Every method runs under one lock, as each DynamoDB write is atomic; the rules come from otp_core.policy."""

    def __init__(self, identities: InMemoryIdentities | None = None) -> None:
        self.identities = identities or InMemoryIdentities()
        self._lock = self.identities.lock
        self.challenges: dict[str, Challenge] = {}
        # (kind, subject, window index) -> count, as the DynamoDB counter items.
        self.counters: dict[tuple[str, str, int], int] = defaultdict(int)
        self.locks: dict[str, int] = {}
        # (app, bucket name) -> absolute minute / hour -> [created, verified], as the FG# items hold them.
        self.minutes: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        self.hours: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        # (scope, window, shard, window index) -> parts, as the BUDGET# items.
        self.budgets: dict[tuple[str, int, int, int], int] = defaultdict(int)

    def activity(self, app_id: str, bucket: Bucket, now: int) -> Activity:
        """What the DynamoDB items hold: minutes of the current and previous hour, hours of the current and
        previous day."""
        hour, day = now // fraud.HOUR, now // fraud.DAY
        key = (app_id, bucket.name)
        return Activity(
            minutes={m: Slot(*cvr) for m, cvr in self.minutes[key].items() if m // 60 in (hour, hour - 1)},
            hours={h: Slot(*cv) for h, cv in self.hours[key].items() if h // 24 in (day, day - 1)},
        )

    def reset_bucket(self, app_id: str, bucket: Bucket) -> None:
        self.minutes.pop((app_id, bucket.name), None)
        self.hours.pop((app_id, bucket.name), None)

    def _guards(self, charge: SendCharge) -> tuple[SendReceipt, list[Callable[[], None]]]:
        """The fraud guard and the budgets of a send: raises before anything changes, else the changes."""
        now, suspected = charge.now, []
        changes: list[Callable[[], None]] = []
        guard = charge.fraud
        if guard is not None:
            if guard.refused_by is not None:
                raise DestinationBlockedError(guard.refused_by.bucket.level)
            rule = fraud.judge_resend if guard.resend else fraud.judge
            for bucket in guard.buckets:
                seen = self.activity(guard.app_id, bucket, now)
                if bucket.name in guard.since:
                    seen = seen.after(guard.since[bucket.name])
                if guard.judge:
                    trip = rule(bucket, seen, now, guard.rules)
                    if trip is not None and guard.rules.mode is Mode.BLOCK:
                        raise DestinationBlockedError(bucket.level, trip=trip)
                    if trip is not None:
                        suspected.append(trip)
                if guard.count:
                    changes.append(functools.partial(self._created, guard.app_id, bucket, now, +1))
                elif guard.resend:
                    changes.append(functools.partial(self._resent, guard.app_id, bucket, now))
        shards, used = [], 0
        for item in charge.budgets:
            budget = item.budget
            index = budget.bucket(now)
            spent = [self.budgets[(budget.scope, budget.window, shard, index)] for shard in range(budget.shards)]
            shard = spend.pick_shard(spent, budget, item.parts, enrolled=item.enrolled, start=item.start)
            if shard is None:
                raise SendBudgetExceededError("spent", retry_after=budget.retry_after(now))
            key = (budget.scope, budget.window, shard, index)
            changes.append(functools.partial(self._spend, key, item.parts))
            shards.append((budget, shard, item.parts))
            used = max(used, (sum(spent) + item.parts) * 100 // budget.cap)
        return SendReceipt(tuple(shards), tuple(suspected), used), changes

    def _created(self, app_id: str, bucket: Bucket, now: int, delta: int) -> None:
        key = (app_id, bucket.name)
        for slots, index in ((self.minutes[key], now // fraud.MINUTE), (self.hours[key], now // fraud.HOUR)):
            slots[index][0] = max(0, slots[index][0] + delta)

    def _resent(self, app_id: str, bucket: Bucket, now: int) -> None:
        self.minutes[(app_id, bucket.name)][now // fraud.MINUTE][2] += 1

    def _spend(self, key: tuple[str, int, int, int], parts: int) -> None:
        self.budgets[key] = max(0, self.budgets[key] + parts)

    def charge_attempts(self, receipt: SendReceipt, attempts: int, now: int) -> None:
        with self._lock:
            for budget, shard, parts in receipt.budget_shards if attempts > 0 else ():
                self._spend((budget.scope, budget.window, shard, budget.bucket(now)), parts * attempts)

    def _verified(self, challenge: Challenge, now: int) -> None:
        if challenge.fraud_app is None or challenge.region is None:
            return
        for bucket in fraud.destination_buckets(challenge.phone_number, challenge.region):
            key = (challenge.fraud_app, bucket.name)
            if challenge.created_at // fraud.HOUR >= now // fraud.HOUR - 1:
                self.minutes[key][challenge.created_at // fraud.MINUTE][1] += 1
            if challenge.created_at // fraud.DAY >= now // fraud.DAY - 1:
                self.hours[key][challenge.created_at // fraud.HOUR][1] += 1

    def _check_lock(self, locks: tuple[str, ...], now: int) -> None:
        for subject in locks:
            until = self.locks.get(subject, 0)
            if until > now:
                raise RateLimitedError("locked", retry_after=until - now)

    def _check_caps(self, charge: SendCharge) -> None:
        now = charge.now
        waits = []
        for counter in charge.counters:
            bucket = counter.bucket(now)
            current = self.counters[(counter.kind, counter.subject, bucket)]
            previous = self.counters[(counter.kind, counter.subject, bucket - 1)]
            if current >= policy.sliding_allowance(counter.cap, previous, now, counter.window):
                waits.append(policy.sliding_retry_after(counter.cap, previous, current, now, counter.window))
        if waits:
            raise RateLimitedError("limited", retry_after=max(waits))

    def _charge(self, charge: SendCharge) -> None:
        now = charge.now
        counters = charge.counters
        waits = []
        for counter in counters:
            bucket = counter.bucket(now)
            current = self.counters[(counter.kind, counter.subject, bucket)]
            previous = self.counters[(counter.kind, counter.subject, bucket - 1)]
            if current >= policy.sliding_allowance(counter.cap, previous, now, counter.window):
                waits.append(policy.sliding_retry_after(counter.cap, previous, current, now, counter.window))
        if waits:
            raise RateLimitedError("limited", retry_after=max(waits))
        for counter in counters:
            self.counters[(counter.kind, counter.subject, counter.bucket(now))] += 1

    def create(self, challenge: Challenge, charge: SendCharge, link: ChallengeLink | None = None) -> SendReceipt:
        with self._lock:
            self._check_lock(charge.locks, charge.now)
            attempts = self.identities.attempts
            if link and link.attempt_id:
                attempt = attempts.get(link.attempt_id)
                if attempt is None or attempt.user_id != link.user_id or attempt.expires_at <= charge.now:
                    raise ConflictError("attempt expired")
            self._check_caps(charge)
            receipt, changes = self._guards(charge)
            self._charge(charge)
            for change in changes:
                change()
            self.challenges[challenge.challenge_id] = challenge
            if link and link.attempt_id:
                attempts[link.attempt_id] = dataclasses.replace(
                    attempts[link.attempt_id], challenge_id=challenge.challenge_id
                )
            if link and link.pointer_key:
                self.identities.pointers[link.pointer_key] = challenge.challenge_id
            return receipt

    def get(self, challenge_id: str) -> Challenge | None:
        with self._lock:
            return self.challenges.get(challenge_id)

    def record_resend(
        self, challenge: Challenge, charge: SendCharge, next_resend_at: int
    ) -> tuple[Challenge, SendReceipt]:
        with self._lock:
            current = self.challenges.get(challenge.challenge_id)
            if current is None or current.resends != challenge.resends or current.state_at(charge.now) != "PENDING":
                raise ConflictError("changed")
            self._check_lock(charge.locks, charge.now)
            self._check_caps(charge)
            receipt, changes = self._guards(charge)
            self._charge(charge)
            for change in changes:
                change()
            updated = dataclasses.replace(current, resends=current.resends + 1, next_resend_at=next_resend_at)
            self.challenges[challenge.challenge_id] = updated
            return updated, receipt

    def refund_send(
        self, challenge: Challenge, charge: SendCharge, *, delete: bool, receipt: SendReceipt | None = None
    ) -> None:
        with self._lock:
            for counter in charge.counters:
                key = (counter.kind, counter.subject, counter.bucket(charge.now))
                self.counters[key] = max(0, self.counters[key] - 1)
            if receipt is not None:
                guard = charge.fraud
                if guard is not None and guard.count:
                    for bucket in guard.buckets:
                        self._created(guard.app_id, bucket, charge.now, -1)
                for budget, shard, parts in receipt.budget_shards:
                    self._spend((budget.scope, budget.window, shard, budget.bucket(charge.now)), -parts)
            if delete:
                self.challenges.pop(challenge.challenge_id, None)

    def _pending(self, challenge_id: str, cutoff: int) -> Challenge | VerifyOutcome:
        current = self.challenges.get(challenge_id)
        if current is None or current.state is not ChallengeState.PENDING or cutoff >= current.expires_at:
            return VerifyOutcome.INVALID
        if current.attempts >= current.max_attempts:
            return VerifyOutcome.EXHAUSTED
        return current

    def record_failure(
        self, challenge: Challenge, code_hash: str, now: int, rule: FailureRule, *, cutoff: int | None = None
    ) -> VerifyOutcome:
        with self._lock:
            current = self._pending(challenge.challenge_id, now if cutoff is None else cutoff)
            if isinstance(current, VerifyOutcome):
                return current
            self._check_lock(rule.locks, now)
            counter = rule.counter
            bucket = counter.bucket(now)
            failures = self.counters[(counter.kind, counter.subject, bucket)]
            previous = self.counters[(counter.kind, counter.subject, bucket - 1)]
            self.challenges[current.challenge_id] = dataclasses.replace(current, attempts=current.attempts + 1)
            self.counters[(counter.kind, counter.subject, bucket)] = failures + 1
            if policy.locks_after_failure(previous, failures, now, rule):
                self.locks[rule.own_lock] = now + rule.lockout_seconds
            return VerifyOutcome.WRONG

    def mark_verified(
        self,
        challenge: Challenge,
        code_hash: str,
        now: int,
        *,
        locks: tuple[str, ...],
        claimable_until: int,
        effects: VerifiedEffects | None = None,
        cutoff: int | None = None,
    ) -> VerifyOutcome:
        with self._lock:
            current = self._pending(challenge.challenge_id, now if cutoff is None else cutoff)
            if isinstance(current, VerifyOutcome):
                return current
            self._check_lock(locks, now)
            if current.code_hash != code_hash:
                return VerifyOutcome.INVALID
            identities = self.identities
            if effects and effects.attempt_id:
                attempt = identities.attempts.get(effects.attempt_id)
                if attempt is None or attempt.expires_at <= now:
                    return VerifyOutcome.INVALID
            if effects and effects.consume_proof and effects.consume_proof[0] in identities.used_tokens:
                return VerifyOutcome.INVALID
            if effects and effects.still_enrolled:
                user_id, authenticator_id = effects.still_enrolled
                enrolled = identities.authenticators.get(user_id)
                if enrolled is None or enrolled.authenticator_id != authenticator_id:
                    return VerifyOutcome.INVALID
            if effects and effects.enroll:
                existing = identities.authenticators.get(effects.enroll.user_id)
                expected = existing.authenticator_id if existing else None
                if expected != effects.replaces:
                    return VerifyOutcome.ENROLL_CONFLICT
            self.challenges[current.challenge_id] = dataclasses.replace(
                current,
                attempts=current.attempts + 1,
                state=ChallengeState.VERIFIED,
                verified_at=now,
                claimable_until=claimable_until,
            )
            self._verified(current, now)
            if effects:
                identities.apply(effects, now)
            return VerifyOutcome.VERIFIED

    def cancel(self, challenge_id: str, now: int) -> Challenge | None:
        with self._lock:
            current = self._pending(challenge_id, now)
            if isinstance(current, VerifyOutcome):
                return None
            cancelled = dataclasses.replace(current, state=ChallengeState.EXPIRED, expires_at=now)
            self.challenges[challenge_id] = cancelled
            return cancelled

    def claim(self, challenge_id: str, user_id: str, now: int, *, again: bool = True) -> Challenge:
        with self._lock:
            current = self.challenges.get(challenge_id)
            if current is None:
                raise ConflictError("unknown")
            claim_window_open = (current.claimable_until or 0) > now
            if again and current.state is ChallengeState.CLAIMED and current.claimed_by == user_id:
                return current
            if (
                current.state is not ChallengeState.VERIFIED
                or not claim_window_open
                or current.user_id not in (None, user_id)
            ):
                raise ConflictError("not claimable")
            updated = dataclasses.replace(current, state=ChallengeState.CLAIMED, claimed_by=user_id)
            self.challenges[challenge_id] = updated
            return updated


class InMemoryIdentities(IdentityRepository):
    def __init__(self) -> None:
        # Shared with the challenge repository so effects of a verification are atomic with it.
        self.lock = threading.RLock()
        self.authenticators: dict[str, Authenticator] = {}
        self.attempts: dict[str, TrackedAttempt] = {}
        # (user, device) known for every action, (user, device, action) allowed in for one.
        self.devices: set[tuple[str, ...]] = set()
        self.pointers: dict[str, str] = {}
        self.used_tokens: set[str] = set()

    def apply(self, effects: VerifiedEffects, now: int) -> None:
        if effects.enroll:
            self.authenticators[effects.enroll.user_id] = effects.enroll
        if effects.consume_proof:
            self.used_tokens.add(effects.consume_proof[0])
        if effects.attempt_id:
            attempt = self.attempts[effects.attempt_id]
            self.attempts[effects.attempt_id] = dataclasses.replace(attempt, state="CHALLENGE_SUCCEEDED")
        if effects.seen_device:
            self.devices.add(effects.seen_device)

    def _upsert(self, authenticator: Authenticator) -> Authenticator:
        old = self.authenticators.get(authenticator.user_id)
        if old is not None and old.phone_number == authenticator.phone_number:
            authenticator = dataclasses.replace(old, verified_at=authenticator.verified_at)
        self.authenticators[authenticator.user_id] = authenticator
        return authenticator

    def get_authenticator(self, user_id: str) -> Authenticator | None:
        with self.lock:
            return self.authenticators.get(user_id)

    def put_authenticator(self, authenticator: Authenticator) -> Authenticator:
        with self.lock:
            return self._upsert(authenticator)

    def delete_authenticator(self, user_id: str, authenticator_id: str) -> bool:
        with self.lock:
            current = self.authenticators.get(user_id)
            if current is None or current.authenticator_id != authenticator_id:
                return False
            del self.authenticators[user_id]
            return True

    def put_attempt(self, attempt: TrackedAttempt, *, seen_device: bool) -> None:
        with self.lock:
            self.attempts[attempt.attempt_id] = attempt
            if seen_device and attempt.device_key:
                self.devices.add((attempt.user_id, attempt.device_key, attempt.action))

    def get_attempt(self, attempt_id: str) -> TrackedAttempt | None:
        with self.lock:
            return self.attempts.get(attempt_id)

    def is_known_device(self, user_id: str, device_key: str, action: str) -> bool:
        with self.lock:
            return (user_id, device_key) in self.devices or (user_id, device_key, action) in self.devices

    def token_used(self, token_id: str) -> bool:
        with self.lock:
            return token_id in self.used_tokens

    def get_pointer(self, pointer_key: str) -> str | None:
        with self.lock:
            return self.pointers.get(pointer_key)

    def consume_token(self, token_id: str, expires_at: int, *, challenge_id: str | None = None) -> bool:
        spent = {token_id} if challenge_id is None else {token_id, f"chl#{challenge_id}"}
        with self.lock:
            if spent & self.used_tokens:
                return False
            self.used_tokens.update(spent)
            return True


class InMemoryFraudStore(FraudStore):
    """Blocks and safe lists in memory; an unblock resets the bucket's counts in ``repository``."""

    def __init__(self, repository: InMemoryRepository) -> None:
        self.repository = repository
        self.items: dict[tuple[str, str], dict[str, object]] = {}
        self.safe: dict[str, tuple[str, ...]] = {}

    def _block(self, item: dict[str, object]) -> Block:
        block = item["block"]
        assert isinstance(block, Block)
        return block

    def guard(self, app_id: str, now: int) -> Guard:
        tripped = {
            name: at
            for (owner, name), item in self.items.items()
            if owner == app_id and isinstance(at := item.get("last_trip_at"), int) and now - at <= fraud.DAY
        }
        return Guard(tuple(self.blocks(app_id, now)), self.safe.get(app_id, ()), tripped)

    def record_trip(self, app_id: str, trip: Trip, now: int, rules: Rules) -> Block:
        with self.repository._lock:
            old = self.items.get((app_id, trip.bucket.name))
            if old is not None and self._block(old).active(now):
                return self._block(old)
            last_trip = old.get("last_trip_at") if old else None
            last_seconds = old.get("last_seconds") if old else None
            assert last_trip is None or isinstance(last_trip, int)
            assert last_seconds is None or isinstance(last_seconds, int)
            seconds = fraud.block_seconds(rules, previous_trip_at=last_trip, previous_seconds=last_seconds, now=now)
            repeat = last_trip is not None and now - last_trip <= fraud.REPEAT_WINDOW
            trips = (self._block(old).trips + 1) if (old and repeat) else 1
            block = Block(app_id, trip.bucket, trip.reason, now, now + seconds, trip.sends, trip.verified, trips)
            self.items[(app_id, trip.bucket.name)] = {"block": block, "last_trip_at": now, "last_seconds": seconds}
        return block

    def blocks(self, app_id: str, now: int) -> list[Block]:
        found = [
            self._block(item)
            for (owner, _), item in self.items.items()
            if owner in (app_id, "*") and self._block(item).active(now)
        ]
        return sorted(found, key=lambda block: (block.since, block.app_id, block.bucket))

    def put_block(self, block: Block) -> Block:
        manual = dataclasses.replace(block, reason=Reason.MANUAL, sends=0, verified=0, trips=0)
        with self.repository._lock:
            old = self.items.get((block.app_id, block.bucket.name), {})
            self.items[(block.app_id, block.bucket.name)] = {**old, "block": manual}
        return manual

    def delete_block(self, app_id: str, bucket: Bucket, now: int) -> bool:
        with self.repository._lock:
            item = self.items.get((app_id, bucket.name))
            if item is None or not self._block(item).active(now):
                return False
            del self.items[(app_id, bucket.name)]
        if app_id != "*":
            self.repository.reset_bucket(app_id, bucket)
        return True

    def safe_list(self, app_id: str) -> tuple[str, ...]:
        return self.safe.get(app_id, ())

    def put_safe_list(self, app_id: str, entries: tuple[str, ...]) -> tuple[str, ...]:
        self.safe[app_id] = entries
        return entries


class InMemoryAppStore(AppStore):
    """The app store (otp_core.adapters.app_store.DynamoAppStore) in memory, with the same conditions: a taken
    ID or audience, a sixth key, a change racing another (the version) and a deleted app are refused."""

    def __init__(self) -> None:
        self.records: dict[str, AppRecord] = {}
        self.audiences: dict[str, str] = {}
        self.identity_providers: dict[str, str] = {}
        self.listed: dict[tuple[str, str], ApiKey] = {}
        self.grants: dict[str, KeyGrant] = {}
        self.touched: builtins.list[tuple[str, str, int]] = []
        self.grant_reads = 0

    def get(self, app_id: str) -> AppRecord | None:
        return self.records.get(app_id)

    def list(self) -> builtins.list[AppRecord]:
        return [record for record in self.records.values() if record.deleted_at is None]

    def create(self, record: AppRecord, audience: str, identity_provider: str | None = None) -> None:
        if record.app_id in self.records:
            raise ConflictError("this appId is taken (IDs of deleted apps are never reused)")
        if audience in self.audiences:
            raise ConflictError("this tokenAudience is another app's")
        if identity_provider is not None and identity_provider in self.identity_providers:
            raise ConflictError("another app uses this idpIssuer with this idpAudience")
        self.records[record.app_id] = record
        self.audiences[audience] = record.app_id
        if identity_provider is not None:
            self.identity_providers[identity_provider] = record.app_id

    def ensure(self, record: AppRecord) -> AppRecord:
        return self.records.setdefault(record.app_id, record)

    def update(
        self,
        old: AppRecord,
        name: str,
        settings: dict[str, object],
        old_audience: str,
        audience: str,
        identity_provider: str | None = None,
    ) -> None:
        current = self.records.get(old.app_id)
        if audience != old_audience and self.audiences.get(audience, old.app_id) != old.app_id:
            raise ConflictError("this tokenAudience is another app's")
        if identity_provider is not None and self.identity_providers.get(identity_provider, old.app_id) != old.app_id:
            raise ConflictError("another app uses this idpIssuer with this idpAudience")
        if current is None or current.version != old.version or current.deleted_at is not None:
            raise ConflictError("the app changed meanwhile (or was deleted); read it and try again")
        self.records[old.app_id] = dataclasses.replace(current, name=name, settings=settings, version=old.version + 1)
        if audience != old_audience:
            self.audiences[audience] = old.app_id
        if identity_provider is not None:
            self.identity_providers[identity_provider] = old.app_id

    def delete(self, app_id: str, now: int) -> None:
        current = self.records.get(app_id)
        if current is not None and current.deleted_at is None:
            self.records[app_id] = dataclasses.replace(current, deleted_at=now)
        for key in self.keys(app_id):
            self.revoke(key, deleted=True)
        if current is None or current.deleted_at is not None:
            raise NotFoundError("no such app")

    def keys(self, app_id: str) -> builtins.list[ApiKey]:
        return [key for (app, _), key in self.listed.items() if app == app_id]

    def add_key(self, key: ApiKey, *, capped: bool = True) -> bool:
        record = self.records.get(key.app_id)
        if record is None or record.deleted_at is not None:
            raise NotFoundError("no such app")
        if capped and record.keys >= 5:
            raise ConflictError("an app holds at most 5 keys; revoke one first")
        if key.digest in self.grants:
            if not capped:
                return False
            raise DependencyError("digest collision")
        self.records[key.app_id] = dataclasses.replace(record, keys=record.keys + 1)
        self.listed[(key.app_id, key.key_id)] = key
        self.grants[key.digest] = KeyGrant(key.app_id, key.key_id)
        return True

    def revoke(self, key: ApiKey, *, deleted: bool = False) -> bool:
        if self.listed.pop((key.app_id, key.key_id), None) is None:
            return False
        self.grants[key.digest] = KeyGrant(key.app_id, key.key_id, revoked=True)
        record = self.records[key.app_id]
        self.records[key.app_id] = dataclasses.replace(record, keys=record.keys - 1)
        return True

    def grant(self, digest: str) -> KeyGrant | None:
        self.grant_reads += 1
        return self.grants.get(digest)

    def touch(self, app_id: str, key_id: str, now: int, every: int) -> None:
        listed = self.listed.get((app_id, key_id))
        if listed is not None and (listed.last_used_at is None or listed.last_used_at < now - every):
            self.listed[(app_id, key_id)] = dataclasses.replace(listed, last_used_at=now)
            self.touched.append((app_id, key_id, now))

    def app_of_sid(self, sid: str) -> str | None:
        return next((record.app_id for record in self.records.values() if record.sid == sid), None)
