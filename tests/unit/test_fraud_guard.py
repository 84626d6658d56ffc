"""Fraud guard and spend guard: the pure trip rules with explicit clocks, and the sending use cases on fakes."""

from __future__ import annotations

import pytest

from otp_core.errors import (
    DeliveryFailedError,
    DestinationBlockedError,
    InvalidPhoneNumberError,
    SendBudgetExceededError,
)
from otp_core.fraud import (
    HOUR,
    MINUTE,
    Activity,
    Block,
    Bucket,
    Guard,
    Mode,
    Reason,
    Rules,
    Slot,
    block_seconds,
    covers,
    destination_buckets,
    is_safe,
    judge,
    last_day,
    last_hour,
    parse_bucket,
    parse_safe_entry,
    refusing_block,
)
from otp_core.records import Authenticator
from otp_core.spend import Budget, limit, pick_shard, shares
from tests.fakes import EPOCH

PREFIX = Bucket("prefix", "447700900")
COUNTRY = Bucket("country", "GB")
RULES = Rules()
NOW = EPOCH + 3 * HOUR  # at an hour boundary


def minutes(*slots: tuple[int, int, int]) -> Activity:
    """Activity from (seconds ago, created, verified) entries."""
    found: dict[int, Slot] = {}
    for ago, created, verified in slots:
        minute = (NOW - ago) // MINUTE
        old = found.get(minute, Slot())
        found[minute] = Slot(old.created + created, old.verified + verified)
    return Activity(minutes=found)


# ------------------------------------------------------------------------------------------------ buckets


def test_a_number_counts_in_its_country_and_its_thousand_number_block():
    assert destination_buckets("+447700900123", "GB") == (COUNTRY, PREFIX)
    assert PREFIX.name == "prefix:447700900" and COUNTRY.name == "country:GB"


@pytest.mark.parametrize("name", ["country:GB", "prefix:4477", "prefix:44770090012345"])
def test_bucket_names_in_their_one_spelling(name):
    assert parse_bucket(name).name == name


@pytest.mark.parametrize(
    "name", ["country:gb", "country:GBR", "prefix:447", "prefix:447700900123456", "prefix:+4477", "GB", "", "city:LON"]
)
def test_other_spellings_are_not_buckets(name):
    with pytest.raises(ValueError, match="bucket"):
        parse_bucket(name)


def test_a_prefix_covers_every_number_under_it_and_a_country_its_region():
    assert covers(parse_bucket("prefix:4477"), "+447700900123", "GB")
    assert not covers(parse_bucket("prefix:4478"), "+447700900123", "GB")
    assert covers(COUNTRY, "+447700900123", "GB")
    assert not covers(parse_bucket("country:IE"), "+447700900123", "GB")


def test_safe_list_entries_and_matching():
    assert parse_safe_entry("+14155552671") == "+14155552671"
    assert parse_safe_entry("prefix:1415555") == "prefix:1415555"
    for bad in ("14155552671", "+1 415 555 2671", "prefix:14", "+114155552671", "country:US"):
        with pytest.raises(ValueError):
            parse_safe_entry(bad)
    assert is_safe("+14155552671", ["prefix:1415555"])
    assert is_safe("+14155552671", ["+14155552671"])
    assert not is_safe("+14155552672", ["+14155552671", "prefix:1416"])


# ------------------------------------------------------------------------------------------------ windows


def test_the_last_hour_is_a_sliding_window_of_minutes():
    activity = minutes((30, 2, 1), (59 * MINUTE, 3, 0), (61 * MINUTE, 5, 0), (2 * HOUR, 7, 7))
    assert last_hour(activity, NOW).sends == 5
    assert last_hour(activity, NOW, older_than=120).sends == 3


def test_the_last_day_counts_only_challenges_older_than_the_code_lifetime():
    recent = minutes((60, 4, 0), (9 * MINUTE, 4, 0), (11 * MINUTE, 4, 1))
    day = Activity(minutes=recent.minutes, hours={NOW // HOUR - 5: Slot(10, 5), NOW // HOUR - 30: Slot(50, 0)})
    counted = last_day(day, NOW, older_than=600)
    assert (counted.sends, counted.verified) == (14, 6)


# ------------------------------------------------------------------------------------------------ trips


def test_the_block_trips_on_the_eleventh_challenge_in_an_hour():
    assert judge(PREFIX, minutes((60, 9, 0)), NOW, RULES) is None
    trip = judge(PREFIX, minutes((60, 10, 0)), NOW, RULES)
    assert trip is not None and (trip.reason, trip.sends) == (Reason.VELOCITY, 10)
    # Verified challenges do not buy a block more than its velocity
    assert judge(PREFIX, minutes((60, 10, 10)), NOW, RULES) is not None


def test_a_country_trips_on_velocity_only_without_verification():
    assert judge(COUNTRY, minutes((60, 49, 0)), NOW, RULES) is None
    assert judge(COUNTRY, minutes((60, 50, 0)), NOW, RULES) is not None
    # Verified users keep it open while none is old enough to judge the ratio
    assert judge(COUNTRY, minutes((60, 50, 1)), NOW, RULES) is None


def test_a_country_trips_on_poor_verification_among_challenges_older_than_the_lag():
    fine = minutes((60, 20, 0), (10 * MINUTE, 30, 6))
    assert judge(COUNTRY, fine, NOW, RULES) is None
    poor = minutes((60, 20, 5), (10 * MINUTE, 30, 5))
    trip = judge(COUNTRY, poor, NOW, RULES)
    assert trip is not None and trip.reason is Reason.VELOCITY


def test_conversion_needs_twenty_old_challenges_and_under_35_percent():
    hour = NOW // HOUR
    assert judge(COUNTRY, Activity(hours={hour - 3: Slot(19, 0)}), NOW, RULES) is None
    assert judge(COUNTRY, Activity(hours={hour - 3: Slot(20, 7)}), NOW, RULES) is None
    trip = judge(COUNTRY, Activity(hours={hour - 3: Slot(20, 6)}), NOW, RULES)
    assert trip is not None and (trip.reason, trip.sends, trip.verified) == (Reason.CONVERSION, 20, 6)
    # Challenges younger than the code lifetime may still be verified: they do not count yet
    assert judge(PREFIX, minutes((5 * MINUTE, 9, 0)), NOW, RULES) is None


def test_conversion_leaves_out_the_challenges_a_receipt_reported_undelivered_up_to_a_quarter():
    hour = NOW // HOUR
    # 40 challenges, 11 verified: 27 % trips the conversion rule...
    trip = judge(COUNTRY, Activity(hours={hour - 3: Slot(40, 11)}), NOW, RULES)
    assert trip is not None and trip.reason is Reason.CONVERSION
    # ...unless a carrier's receipts said 10 never arrived: 11 of the 30 delivered is 37 %
    assert judge(COUNTRY, Activity(hours={hour - 3: Slot(40, 11, undelivered=10)}), NOW, RULES) is None
    # But no more than a quarter of the sends is excused: a terminating carrier that bills for pumped messages
    # and reports them all failed still trips the bucket (99 sent, none verified, all "failed")
    pumped = judge(PREFIX, Activity(hours={hour - 3: Slot(99, 0, undelivered=99)}), NOW, RULES)
    assert pumped is not None and pumped.reason is Reason.CONVERSION
    assert last_day(Activity(hours={hour - 3: Slot(99, 0, undelivered=99)}), NOW, older_than=600).delivered == 75
    # Counts never excuse more than there are, nor add any back
    assert last_day(Activity(hours={hour - 3: Slot(8, 0, undelivered=-3)}), NOW, older_than=600).delivered == 8


def test_a_country_s_verified_share_is_of_its_delivered_challenges():
    found = {(NOW - 10 * MINUTE) // MINUTE: Slot(60, 10, undelivered=15)}
    # 10 verified of the 45 delivered (22 %) is fine; of the 60 sent it would have been 17 %
    assert judge(COUNTRY, Activity(minutes=found), NOW, RULES) is None
    assert judge(COUNTRY, Activity(minutes={m: Slot(60, 10) for m in found}), NOW, RULES) is not None


def test_at_the_defaults_a_legitimate_campaign_never_trips():
    # One sign-in every 2 seconds for an hour, each verified 30-120 seconds later
    found: dict[int, list[int]] = {}
    for second in range(0, HOUR, 2):
        created_at = NOW - HOUR + second
        slot = found.setdefault(created_at // MINUTE, [0, 0])
        slot[0] += 1
        if created_at + 30 + (second % 91) <= NOW:
            slot[1] += 1
    activity = Activity(minutes={m: Slot(c, v) for m, (c, v) in found.items()})
    assert judge(COUNTRY, activity, NOW, RULES) is None


def test_repeat_trips_within_a_week_double_the_block():
    assert block_seconds(RULES, previous_trip_at=None, previous_seconds=None, now=NOW) == 12 * HOUR
    assert block_seconds(RULES, previous_trip_at=NOW - 13 * HOUR, previous_seconds=12 * HOUR, now=NOW) == 24 * HOUR
    assert block_seconds(RULES, previous_trip_at=NOW - 8 * 24 * HOUR, previous_seconds=48 * HOUR, now=NOW) == 12 * HOUR


def test_manual_blocks_hold_in_every_mode_and_over_the_safe_list():
    manual = Block("default", PREFIX, Reason.MANUAL, NOW, None)
    tripped = Block("default", COUNTRY, Reason.VELOCITY, NOW, NOW + HOUR)
    safe = Guard((manual,), ("+447700900123",))
    for mode in Mode:
        assert refusing_block(safe, "+447700900123", "GB", NOW, mode) == manual
    guard = Guard((tripped,), ("prefix:4477009",))
    assert refusing_block(guard, "+447711111111", "GB", NOW, Mode.BLOCK) == tripped
    assert refusing_block(guard, "+447700900123", "GB", NOW, Mode.BLOCK) is None  # safe-listed
    assert refusing_block(guard, "+447711111111", "GB", NOW, Mode.MONITOR) is None
    assert refusing_block(guard, "+447711111111", "GB", NOW, Mode.BLOCK, enrolled=True) is None
    assert refusing_block(guard, "+447711111111", "GB", NOW + HOUR, Mode.BLOCK) is None  # expired


# ------------------------------------------------------------------------------------------------ budgets


def test_budget_shares_sum_to_the_limit_and_hold_a_fifth_for_enrolled_numbers():
    assert shares(10, 4) == [3, 3, 2, 2]
    assert limit(1000, enrolled=False) == 800 and limit(1000, enrolled=True) == 1000
    small, big = Budget("default", HOUR, 1000), Budget("*", 86_400, 1_000_000)
    assert (small.shards, big.shards) == (1, 4)
    assert pick_shard([799], small, 1, enrolled=False, start=0) == 0
    assert pick_shard([800], small, 1, enrolled=False, start=0) is None
    assert pick_shard([800], small, 1, enrolled=True, start=0) == 0
    assert pick_shard([200_000, 0, 200_000, 200_000], big, 1, enrolled=False, start=2) == 1
    assert small.retry_after(NOW + 100) == HOUR - 100


# ------------------------------------------------------------------------------------------------ use cases


def create(world, phone: str, **fields):
    return world.service.start(phone, "signIn", **fields)[1]


def test_a_tripped_block_is_refused_before_any_provider_and_recorded(world):
    for i in range(10):
        create(world, f"+447400123{i:03d}")
    sent = len(world.sender.sent)
    with pytest.raises(DestinationBlockedError) as refused:
        create(world, "+447400123999")
    assert refused.value.status == 403 and refused.value.code == "DESTINATION_BLOCKED"
    assert "447400123" not in refused.value.detail and "prefix" in refused.value.detail
    assert len(world.sender.sent) == sent
    [block] = world.fraud.blocks("default", world.clock.now())
    assert (block.bucket.name, block.reason, block.sends) == ("prefix:447400123", Reason.VELOCITY, 10)
    # The block holds after the hour's window slid (12 hours), and nothing was charged to the number
    world.clock.advance(2 * HOUR)
    with pytest.raises(DestinationBlockedError):
        create(world, "+447400123999")
    world.clock.advance(11 * HOUR)
    create(world, "+447400123999")


def test_verified_challenges_keep_a_country_open(world):
    for i in range(60):
        challenge = create(world, f"+4474{i:03d}23456")
        world.clock.advance(30)
        assert world.service.verify(challenge.challenge_id, world.sender.last_code()).is_verified
        world.clock.advance(30)


def test_monitor_mode_sends_and_counts_suspicion(make_world):
    world = make_world(fraud_guard_mode="monitor")
    for i in range(12):
        create(world, f"+447400123{i:03d}")
    assert len(world.sender.sent) == 12
    assert world.fraud.blocks("default", world.clock.now()) == []


def test_off_mode_still_obeys_manual_blocks(make_world):
    world = make_world(fraud_guard_mode="off")
    for i in range(12):
        create(world, f"+447400123{i:03d}")
    world.fraud.put_block(Block("*", parse_bucket("country:GB"), Reason.MANUAL, world.clock.now(), None))
    with pytest.raises(DestinationBlockedError):
        create(world, "+447400123999")
    create(world, "+14155552671")


def test_a_safe_listed_number_is_never_blocked_by_a_trip(world):
    world.fraud.put_safe_list("default", ("prefix:447400123",))
    for i in range(15):
        create(world, f"+447400123{i:03d}")
    assert world.fraud.blocks("default", world.clock.now()) == []


def test_an_enrolled_user_is_not_locked_out_by_strangers_tripping_the_block(world):
    world.identities.put_authenticator(Authenticator("auth-1", "victim", "+447400123555", EPOCH, EPOCH))
    for i in range(10):
        create(world, f"+447400123{i:03d}")
    with pytest.raises(DestinationBlockedError):
        create(world, "+447400123777")
    # The owner's own sign-in still goes out: an enrolled (verified) number is not what pumping buys
    world.starter.create(world.policy, action="signIn", user_id="victim")
    assert world.sender.sent[-1].to == "+447400123555"


def test_a_budget_refuses_with_retry_after_and_sends_nothing(make_world):
    world = make_world(sms_budget_per_hour=5)
    for i in range(4):
        create(world, f"+1415555{i:04d}")
    with pytest.raises(SendBudgetExceededError) as spent:
        create(world, "+14155559999")
    assert spent.value.status == 429 and spent.value.code == "SEND_BUDGET_EXCEEDED"
    assert 1 <= spent.value.retry_after <= HOUR
    assert len(world.sender.sent) == 4


def test_a_provider_refusing_the_number_refunds_budget_and_buckets(make_world):
    world = make_world(sms_budget_per_hour=5)
    world.sender.refuse_numbers = True
    for i in range(12):
        with pytest.raises(InvalidPhoneNumberError):
            create(world, f"+447400123{i:03d}")
    # Neither the block's count nor the budget kept anything
    assert sum(world.repository.budgets.values()) == 0
    assert all(c == 0 for c, *_ in world.repository.minutes[("default", "prefix:447400123")].values())


def test_a_resend_is_not_counted_but_a_block_at_its_cap_refuses_it(make_world):
    # Given nine challenges to one block, each resent (resends are no new challenges: nothing trips)
    world = make_world(resend_cooldown_seconds=0)
    challenges = [create(world, f"+447400123{i:03d}") for i in range(9)]
    for challenge in challenges:
        world.service.resend(challenge.challenge_id)
    assert world.fraud.blocks("default", world.clock.now()) == []
    # When a tenth challenge fills the block's hour, then a resend is refused where a new challenge would be,
    # so a pumper cannot multiply each challenge by the per-number caps; a refused resend records no block
    # (real users' resends must not close a block), the next new challenge does
    tenth = create(world, "+447400123009")
    with pytest.raises(DestinationBlockedError):
        world.service.resend(tenth.challenge_id)
    with pytest.raises(DestinationBlockedError):
        world.service.resend(challenges[0].challenge_id)
    assert world.fraud.blocks("default", world.clock.now()) == []
    with pytest.raises(DestinationBlockedError):
        create(world, "+447400123010")
    assert [b.bucket.name for b in world.fraud.blocks("default", world.clock.now())] == ["prefix:447400123"]


def test_a_provider_outage_does_not_look_like_pumping(world):
    # Given a provider outage while 60 users of one country sign in (every send ends in 502)
    world.sender.fail = True
    for i in range(60):
        with pytest.raises(DeliveryFailedError):
            create(world, f"+4474{i:03d}23456")
    # When the provider recovers, then the country and the blocks are open: undeliverable challenges count nowhere
    world.sender.fail = False
    create(world, "+447499923456")
    assert world.fraud.blocks("default", world.clock.now()) == []


def test_a_verification_buys_a_country_five_more_challenges_not_a_burst(world):
    # Given one verified challenge in a country, then a burst of fresh challenges (too young to judge a ratio)
    first = create(world, "+447400023456")
    world.service.verify(first.challenge_id, world.sender.last_code())

    def burst() -> int:
        for i in range(1, 200):
            try:
                create(world, f"+4474{i:03d}23456")
            except DestinationBlockedError:
                return i
        return 200

    sent = burst()
    # Then the country stops at its cap plus five per verification
    assert sent == 55


def test_resends_are_capped_at_twice_the_blocks_velocity(make_world):
    # Given five challenges to one block, each resent as often as the cooldown allows
    world = make_world(resend_cooldown_seconds=0, max_sends_per_10_minutes=100, max_sends_per_day=100)
    challenges = [create(world, f"+447400123{i:03d}") for i in range(5)]

    def resend_all() -> int:
        resent = 0
        for _ in range(10):
            for challenge in challenges:
                try:
                    world.service.resend(challenge.challenge_id)
                except DestinationBlockedError:
                    return resent
                resent += 1
        return resent

    resent = resend_all()
    # Then the block's SMS of the hour stop at twice its velocity cap (5 challenges + 15 resends)
    assert resent == 15
    assert len(world.sender.sent) == 20
