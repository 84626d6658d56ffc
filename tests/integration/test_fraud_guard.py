"""The fraud guard's and the spend guard's store behaviour, once for the in-memory fake and once for DynamoDB Local.

Buckets are counted, judged and capped in the write that stores a challenge (otp_core.fraud rules, the
repository's conditions); verified challenges are counted in the verify write; blocks and safe lists live in
the fraud store. Each test runs against both stores, so the fake the unit tests use behaves as DynamoDB does.
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
from otp_core.adapters.fraud_store import CachedFraudStore, DynamoFraudStore
from otp_core.errors import DestinationBlockedError, RateLimitedError, SendBudgetExceededError
from otp_core.fraud import (
    HOUR,
    Block,
    FraudCharge,
    Mode,
    Reason,
    Rules,
    Trip,
    country_shard,
    destination_buckets,
    parse_bucket,
)
from otp_core.policy import SendReceipt, lock_subjects, send_charge
from otp_core.ports import ChallengeRepository, FraudStore
from otp_core.records import Challenge, SendQuota, VerifyOutcome
from otp_core.settings import Policy
from otp_core.spend import BudgetCharge, budgets
from tests.fakes import InMemoryFraudStore, InMemoryRepository

HASH = "a" * 64
APP = "default"


@dataclass
class Guarded:
    """A repository and fraud store pair, called the way the use cases call them."""

    repository: ChallengeRepository
    fraud: FraudStore
    rules: Rules
    policy: Policy
    # Each test's own app: the DynamoDB Local table is shared, and every bucket is per app.
    app: str = dataclasses.field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")

    def send(
        self, number: str, now: int, *, region: str = "GB", judge: bool = True, parts: int = 1, enrolled: bool = False
    ) -> tuple[Challenge, SendReceipt]:
        created = challenge(number, now, region, self.app)
        charge = dataclasses.replace(
            send_charge(SendQuota(f"key-{number}", None, now), self.policy),
            fraud=FraudCharge(
                self.app,
                destination_buckets(number, region),
                country_shard(created.challenge_id),
                self.rules,
                count=self.rules.mode is not Mode.OFF,
                judge=judge,
                since=dict(self.fraud.guard(self.app, now).tripped),
            ),
            budgets=tuple(
                BudgetCharge(budget, parts, enrolled, int(created.challenge_id[9:13], 16))
                for budget in budgets(self.app, self.policy.sms_budget_per_hour, self.policy.sms_budget_per_day, 0)
            ),
        )
        return created, self.repository.create(created, charge)

    def verify(self, created: Challenge, now: int) -> VerifyOutcome:
        locks = tuple(lock_subjects(created.number_key, created.owner))
        return self.repository.mark_verified(created, HASH, now, locks=locks, claimable_until=now + 600)


def challenge(number: str, now: int, region: str, app: str) -> Challenge:
    return Challenge(
        challenge_id=str(uuid.uuid4()),
        phone_number=number,
        action="signIn",
        user_id=None,
        scope=None,
        code_hash=HASH,
        code_mask="123456",
        number_key=f"key-{number}",
        ip_key=None,
        message=None,
        sender_id=None,
        locale=None,
        created_at=now,
        expires_at=now + 600,
        max_attempts=5,
        region=region,
        fraud_app=app,
    )


@pytest.fixture(params=["memory", "dynamodb"])
def make_guarded(request: pytest.FixtureRequest) -> Callable[..., Guarded]:
    def build(mode: Mode = Mode.BLOCK, **policy: Any) -> Guarded:
        rules = Rules(mode=mode)
        settings = Policy(**{"sms_budget_per_hour": 0, "sms_budget_per_day": 0, **policy})
        if request.param == "memory":
            repository = InMemoryRepository()
            return Guarded(repository, InMemoryFraudStore(repository), rules, settings)
        stack = request.getfixturevalue("stack")
        client = boto3.client("dynamodb")
        return Guarded(
            DynamoChallengeRepository(client, stack.table, sleep=lambda _: None),
            DynamoFraudStore(client, stack.table),
            rules,
            settings,
        )

    return build


def start() -> int:
    """An hour boundary ahead of real time (DynamoDB Local deletes items whose TTL has passed)."""
    return (int(time.time()) // HOUR + 2) * HOUR


_used = iter(range(10**6))


def block() -> str:
    """A fresh thousand-number block of GB mobiles, without its last three digits."""
    return f"+4477{next(_used):05d}"


def test_the_eleventh_challenge_to_a_block_in_an_hour_is_refused_and_trips_it(make_guarded):
    # Given ten challenges to numbers of one thousand-number block within the hour
    guarded, now = make_guarded(), start()
    prefix = block()
    for i in range(10):
        guarded.send(f"{prefix}{i:03d}", now + i * 60)

    # When an eleventh is sent
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send(f"{prefix}999", now + 11 * 60)

    # Then it is refused by the block's velocity, naming the level only
    trip = refused.value.trip
    assert isinstance(trip, Trip)
    assert (trip.bucket.level, trip.reason, trip.sends) == ("prefix", Reason.VELOCITY, 10)
    assert refused.value.level == "prefix" and "999" not in refused.value.detail
    # And an hour after the first, the window has slid past it
    guarded.send(f"{prefix}998", now + HOUR + 120)


def test_a_refused_send_counts_nowhere(make_guarded):
    # Given a block at its cap
    guarded, now = make_guarded(), start()
    prefix = block()
    for i in range(10):
        guarded.send(f"{prefix}{i:03d}", now)
    # When more sends are refused
    for _ in range(5):
        with pytest.raises(DestinationBlockedError):
            guarded.send(f"{prefix}500", now + 60)
    # Then the country did not count them: 40 more in other blocks of GB do not trip it (10 + 40 = 50)
    for _ in range(40):
        guarded.send(f"{block()}000", now + 120)


def test_a_country_with_no_verification_trips_after_fifty(make_guarded):
    guarded, now = make_guarded(), start()
    for i in range(50):
        guarded.send(f"{block()}001", now + i)
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send(f"{block()}001", now + 60)
    trip = refused.value.trip
    assert isinstance(trip, Trip)
    assert (trip.bucket.name, trip.reason, trip.sends, trip.verified) == ("country:GB", Reason.VELOCITY, 50, 0)


def test_a_country_whose_users_verify_is_not_tripped(make_guarded):
    # Given 60 challenges in an hour, one every minute, each verified 30 seconds later
    guarded, now = make_guarded(), start()
    for i in range(60):
        created, _ = guarded.send(f"{block()}002", now + i * 60)
        assert guarded.verify(created, now + i * 60 + 30) is VerifyOutcome.VERIFIED
    # Then the next one still goes out
    guarded.send(f"{block()}002", now + 3600)


def test_poor_verification_among_older_challenges_trips_the_country(make_guarded):
    # Given 50 challenges of which one in ten was verified, most older than the two-minute lag
    guarded, now = make_guarded(), start()
    for i in range(50):
        created, _ = guarded.send(f"{block()}003", now + i * 10)
        if i % 10 == 0:
            guarded.verify(created, now + i * 10 + 5)
    # Then the 51st trips the country (4 verified of the ~37 older than two minutes is under one in five)
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send(f"{block()}003", now + 50 * 10)
    assert isinstance(refused.value.trip, Trip)
    assert refused.value.trip.bucket.name == "country:GB"


def test_conversion_counts_only_challenges_older_than_the_code_lifetime(make_guarded):
    # Given 20 challenges to a country (spread over blocks), none verified
    guarded, now = make_guarded(), start()
    for _ in range(20):
        guarded.send(f"{block()}004", now, region="GB")
    # When the code lifetime has not passed, the next is sent; once it has, it trips on conversion
    guarded.send(f"{block()}004", now + 300)
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send(f"{block()}004", now + 3 * 600)
    assert isinstance(refused.value.trip, Trip)
    assert refused.value.trip.reason is Reason.CONVERSION


def test_a_safe_listed_send_is_counted_but_never_judged(make_guarded):
    guarded, now = make_guarded(), start()
    prefix = block()
    for i in range(15):
        guarded.send(f"{prefix}{i:03d}", now, judge=False)
    with pytest.raises(DestinationBlockedError):
        guarded.send(f"{prefix}900", now)


def test_monitor_mode_lets_trips_through_and_reports_them(make_guarded):
    guarded, now = make_guarded(Mode.MONITOR), start()
    prefix = block()
    receipts = [guarded.send(f"{prefix}{i:03d}", now)[1] for i in range(12)]
    assert [len(r.suspected) for r in receipts] == [0] * 10 + [1, 1]


def test_off_mode_counts_nothing(make_guarded):
    guarded, now = make_guarded(Mode.OFF), start()
    prefix = block()
    for i in range(30):
        guarded.send(f"{prefix}{i:03d}", now)


def test_concurrent_sends_to_one_block_never_pass_its_cap(make_guarded):
    guarded, now = make_guarded(), start()
    prefix = block()
    passed, refused = [], []
    barrier = threading.Barrier(16)

    def attack(i: int) -> None:
        barrier.wait()
        try:
            guarded.send(f"{prefix}{i:03d}", now)
            passed.append(i)
        except (DestinationBlockedError, RateLimitedError):
            # RateLimitedError: lost the race for the count too often; the caller may retry (429)
            refused.append(i)

    threads = [threading.Thread(target=attack, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then never more than the cap went through, and retrying the refused ones fills it exactly
    assert 1 <= len(passed) <= 10
    for i in refused:
        try:
            guarded.send(f"{prefix}{i:03d}", now)
            passed.append(i)
        except DestinationBlockedError:
            pass
    assert len(passed) == 10


def test_a_budget_holds_a_fifth_for_enrolled_numbers(make_guarded):
    # Given an hourly budget of 10 parts
    guarded, now = make_guarded(sms_budget_per_hour=10), start()
    # Then sends to unknown numbers stop at 8 parts, with Retry-After up to the hour's end
    for _ in range(8):
        guarded.send(f"{block()}005", now + 100)
    with pytest.raises(SendBudgetExceededError) as spent:
        guarded.send(f"{block()}005", now + 100)
    assert spent.value.retry_after == HOUR - 100
    # And enrolled users' numbers may use the held fifth, and no more
    guarded.send(f"{block()}006", now + 100, enrolled=True)
    guarded.send(f"{block()}006", now + 100, enrolled=True)
    with pytest.raises(SendBudgetExceededError):
        guarded.send(f"{block()}006", now + 100, enrolled=True)
    # And the next hour has a fresh budget
    guarded.send(f"{block()}007", now + HOUR)


def test_parts_are_what_a_budget_counts(make_guarded):
    guarded, now = make_guarded(sms_budget_per_hour=10), start()
    guarded.send(f"{block()}008", now, parts=3)
    guarded.send(f"{block()}008", now, parts=3)
    with pytest.raises(SendBudgetExceededError):
        guarded.send(f"{block()}008", now, parts=3)


def test_a_refund_with_its_receipt_returns_the_budget_and_the_counts(make_guarded):
    guarded, now = make_guarded(sms_budget_per_hour=5), start()
    prefix = block()
    sent = [guarded.send(f"{prefix}{i:03d}", now) for i in range(4)]
    for created, receipt in sent:
        charge = dataclasses.replace(
            send_charge(SendQuota(created.number_key, None, now), guarded.policy),
            fraud=FraudCharge(
                guarded.app,
                destination_buckets(created.phone_number, "GB"),
                country_shard(created.challenge_id),
                guarded.rules,
                count=True,
                judge=True,
            ),
        )
        guarded.repository.refund_send(created, charge, delete=True, receipt=receipt)
    # The whole budget (4 of 5 for unknown numbers) and the block's ten are there again
    for i in range(4):
        guarded.send(f"{prefix}{i + 10:03d}", now)
    for i in range(6):
        guarded.send(f"{prefix}{i + 20:03d}", now, parts=0)


def test_extra_attempts_of_a_failover_spend_the_budget(make_guarded):
    guarded, now = make_guarded(sms_budget_per_hour=10), start()
    _, receipt = guarded.send(f"{block()}009", now)
    guarded.repository.charge_attempts(receipt, 6, now)
    with pytest.raises(SendBudgetExceededError):
        guarded.send(f"{block()}009", now, parts=2)


def test_a_trip_blocks_twelve_hours_then_twice_as_long_within_a_week(make_guarded):
    guarded, now = make_guarded(), start()
    bucket = parse_bucket("prefix:447700900")
    trip = Trip(bucket, Reason.VELOCITY, 10, 0)
    first = guarded.fraud.record_trip(guarded.app, trip, now, guarded.rules)
    assert first.until == now + 12 * HOUR
    # A second trip while blocked changes nothing
    assert guarded.fraud.record_trip(guarded.app, trip, now + 60, guarded.rules).until == now + 12 * HOUR
    second = guarded.fraud.record_trip(guarded.app, trip, now + 13 * HOUR, guarded.rules)
    assert second.until == now + 13 * HOUR + 24 * HOUR
    assert second.trips == 2
    # An operator's unblock starts it afresh
    assert guarded.fraud.delete_block(guarded.app, bucket, now + 14 * HOUR)
    third = guarded.fraud.record_trip(guarded.app, trip, now + 15 * HOUR, guarded.rules)
    assert third.until == now + 15 * HOUR + 12 * HOUR


def test_an_unblock_resets_the_buckets_counts(make_guarded):
    guarded, now = make_guarded(), start()
    prefix = block()
    for i in range(10):
        guarded.send(f"{prefix}{i:03d}", now)
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send(f"{prefix}100", now)
    assert isinstance(refused.value.trip, Trip)
    guarded.fraud.record_trip(guarded.app, refused.value.trip, now, guarded.rules)
    assert guarded.fraud.delete_block(guarded.app, parse_bucket(f"prefix:{prefix[1:]}"), now + 60)
    assert not guarded.fraud.delete_block(guarded.app, parse_bucket(f"prefix:{prefix[1:]}"), now + 60)
    guarded.send(f"{prefix}101", now + 120)


def test_manual_blocks_safe_lists_and_every_app_blocks_are_listed(make_guarded):
    guarded, now = make_guarded(), start()
    country = parse_bucket("country:GB")
    guarded.fraud.put_block(Block(guarded.app, country, Reason.MANUAL, now, None))
    guarded.fraud.put_block(Block("*", parse_bucket("prefix:4477"), Reason.MANUAL, now, now + HOUR))
    everyone = {b.bucket.name for b in guarded.fraud.guard(f"{guarded.app}-2", now + 1).blocks}
    guarded.fraud.put_safe_list(guarded.app, ("+447700900123", "prefix:1415555"))
    view = guarded.fraud.guard(guarded.app, now + 1)
    assert {(b.app_id, b.bucket.name, b.until) for b in view.blocks} == {
        (guarded.app, "country:GB", None),
        ("*", "prefix:4477", now + HOUR),
    }
    assert view.safe_list == ("+447700900123", "prefix:1415555")
    assert "prefix:4477" in everyone and "country:GB" not in everyone
    guarded.fraud.delete_block("*", parse_bucket("prefix:4477"), now + 2)
    assert [b.bucket.name for b in guarded.fraud.guard(guarded.app, now + HOUR).blocks] == ["country:GB"]


def test_the_cached_view_reads_once_per_interval(stack):
    clock = [0.0]
    store = DynamoFraudStore(boto3.client("dynamodb"), stack.table)
    cached = CachedFraudStore(store, max_age=4.0, clock=lambda: clock[0])
    now = start()
    assert cached.guard(APP, now).blocks == ()
    # Another function's operator change is seen once the interval has passed (this one's own at once)
    store.put_block(Block("cache-app", parse_bucket("country:FR"), Reason.MANUAL, now, None))
    assert cached.guard("cache-app", now).blocks == ()
    clock[0] = 4.0
    assert [b.bucket.name for b in cached.guard("cache-app", now).blocks] == ["country:FR"]


def test_concurrent_sends_to_a_country_without_verification_never_pass_its_cap(make_guarded):
    # Given 60 concurrent sends to 60 blocks of one country no user verified in
    guarded, now = make_guarded(), start()
    passed, refused = [], []
    barrier = threading.Barrier(60)

    def attack() -> None:
        number = f"{block()}010"
        barrier.wait()
        for _ in range(20):  # a 429 (lost the race too often) is retried, as a client would
            try:
                guarded.send(number, now)
            except DestinationBlockedError:
                refused.append(number)
                return
            except RateLimitedError:
                continue
            passed.append(number)
            return

    threads = [threading.Thread(target=attack) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then at most the country's cap went out, and the rest were refused
    assert len(passed) <= 50
    assert len(passed) + len(refused) == 60


def test_counts_before_a_trip_cannot_trip_the_bucket_again(make_guarded):
    guarded, now = make_guarded(), start()
    for _ in range(20):
        guarded.send(f"{block()}011", now)
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send(f"{block()}011", now + 700)
    assert isinstance(refused.value.trip, Trip)
    guarded.fraud.record_trip(guarded.app, refused.value.trip, now + 700, guarded.rules)
    # When the block has ended, the first send does not meet the old evidence again
    guarded.send(f"{block()}011", now + 700 + 12 * HOUR + 1)


def test_a_non_geographic_number_counts_in_country_zz(make_guarded):
    guarded, now = make_guarded(), start()
    for i in range(50):
        guarded.send(f"+88161{i:03d}0078", now, region="001")
    with pytest.raises(DestinationBlockedError) as refused:
        guarded.send("+881619990078", now, region="001")
    assert isinstance(refused.value.trip, Trip)
    block = guarded.fraud.record_trip(guarded.app, refused.value.trip, now, guarded.rules)
    assert block.bucket.name == "country:ZZ"
    assert [b.bucket.name for b in guarded.fraud.guard(guarded.app, now).blocks] == ["country:ZZ"]
