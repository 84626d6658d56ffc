"""Fraud guard: destination buckets, their activity and the trip rules, as pure functions.

Every new challenge is counted per app in the buckets of its destination: the number's country
(``country:GB``) and its thousand-number block (the E.164 digits without the last three,
``prefix:447700900``). A bucket's :class:`Activity` is what the stores keep of it: challenges created per
minute (the last two hours) and per hour (the last two days), and, against each creation slot, how many of
those challenges were verified (the verify write counts a success in its challenge's creation slot, so "of the
challenges older than X, how many were verified" is a sum over slots). Both stores read the activity in the
same round trip as the caller's send counters and ask :func:`judge` whether one more challenge trips the
bucket; the thousand-number block's velocity is also a condition of the write (its count is exact), the
country's counts are summed over :data:`COUNTRY_SHARDS` items so a busy country is no hot key.

Trips at the defaults (stack parameters, ``Policy`` fields ``fraud_*``):

- velocity, thousand-number block: the 11th challenge in the last hour is refused and trips it;
- velocity, country: more than 50 in the last hour, of which none was verified, or fewer than one in five of
  those older than the verification lag (two minutes);
- conversion, any bucket: at least 20 challenges in the last 24 hours older than the code lifetime, of which
  fewer than 35 % were verified.

Both conversion rules leave out challenges a signed delivery receipt reported undelivered (``u`` slots,
counted in the creation slot by the receipt's write), up to a quarter of the bucket's sends
(:data:`MAX_UNDELIVERED_SHARE`): an SMS the carrier could not deliver can never be verified, so a partial
outage does not look like pumping, while a terminating carrier that bills for pumped messages and reports them
failed cannot take more than that share of its traffic out of the judgement.

A tripped bucket is blocked for 12 hours, twice as long as the time before when it trips again within 7 days
(:func:`block_seconds`); safe-listed numbers and prefixes are never blocked by a trip; manual blocks hold in
every mode and over the safe list (:func:`refusing_block`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MINUTE = 60
HOUR = 3_600
DAY = 86_400
# Items a country's counts are spread over. An hour item takes about 250 transactional writes a second (about
# 1.3 KB, 4 write units each, of a partition's 1,000), so two take about 500 new challenges a second to one
# country, ten times the stage's default throttle; every send reads all of them, so more cost reads.
COUNTRY_SHARDS = 2
# The most of a bucket's sends (percent) that undelivered receipts may take out of the conversion rules.
MAX_UNDELIVERED_SHARE = 25
REPEAT_WINDOW = 7 * DAY

_COUNTRY = re.compile(r"[A-Z]{2}")
_PREFIX = re.compile(r"[0-9]{4,14}")
_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")


class Mode(StrEnum):
    BLOCK = "block"
    MONITOR = "monitor"
    OFF = "off"


class Reason(StrEnum):
    VELOCITY = "VELOCITY"
    CONVERSION = "CONVERSION"
    MANUAL = "MANUAL"


@dataclass(frozen=True, order=True)
class Bucket:
    """A destination bucket: ``country:<ISO alpha-2>`` or ``prefix:<4-14 digits>``."""

    level: str
    value: str

    @property
    def name(self) -> str:
        return f"{self.level}:{self.value}"

    @property
    def shards(self) -> int:
        return COUNTRY_SHARDS if self.level == "country" else 1


def parse_bucket(text: str) -> Bucket:
    """The bucket a name spells, exactly as the contract writes it.

    Raises
    ------
    ValueError
        Neither ``country:<ISO alpha-2>`` (upper case) nor ``prefix:<4-14 digits>``.
    """
    level, _, value = text.partition(":")
    if (level == "country" and _COUNTRY.fullmatch(value)) or (level == "prefix" and _PREFIX.fullmatch(value)):
        return Bucket(level, value)
    raise ValueError("a bucket is country:<ISO 3166 alpha-2> or prefix:<4-14 digits>")


NON_GEOGRAPHIC = "ZZ"


def country_of(region: str) -> str:
    """A region as a country bucket's value: libphonenumber's ``001`` (satellite and other non-geographic
    numbers, a classic toll-fraud target) and anything else that is no ISO alpha-2 code count as ``ZZ``."""
    return region if _COUNTRY.fullmatch(region) else NON_GEOGRAPHIC


def destination_buckets(phone_number: str, region: str) -> tuple[Bucket, Bucket]:
    """The buckets a challenge to a canonical E.164 number counts in: its country, its thousand-number block."""
    return Bucket("country", country_of(region)), Bucket("prefix", phone_number[1:-3])


def parse_safe_entry(text: str) -> str:
    """A safe-list entry in its one spelling: a canonical E.164 number or ``prefix:<4-14 digits>``.

    Raises
    ------
    ValueError
        Anything else.
    """
    if _NUMBER.fullmatch(text):
        from otp_core.phone import canonical_form

        if canonical_form(text) != text:
            raise ValueError("a number on the safe list is in canonical E.164")
        return text
    if text.startswith("prefix:") and _PREFIX.fullmatch(text[len("prefix:") :]):
        return text
    raise ValueError("a safe-list entry is an E.164 number or prefix:<4-14 digits>")


def is_safe(phone_number: str, entries: Iterable[str]) -> bool:
    """True when the number, or a prefix of its digits, is on the safe list."""
    digits = phone_number[1:]
    for entry in entries:
        if entry == phone_number or (entry.startswith("prefix:") and digits.startswith(entry[len("prefix:") :])):
            return True
    return False


@dataclass(frozen=True)
class Slot:
    created: int = 0
    verified: int = 0
    # Resends in that minute (minute slots only): no new challenges, but SMS all the same.
    resent: int = 0
    # Challenges of the slot whose SMS a provider's signed receipt reported undelivered: they could never be
    # verified, so the conversion rules leave them out (a carrier's outage is no pumping).
    undelivered: int = 0


@dataclass(frozen=True)
class Activity:
    """A bucket's challenges (and the verified ones among them) by creation slot, summed over its shards.

    ``minutes`` maps absolute minute indexes (``epoch // 60``) of the current and previous hour, ``hours``
    absolute hour indexes of the current and previous day. The minutes are exact; the hours give the rest of
    the day.
    """

    minutes: Mapping[int, Slot] = field(default_factory=dict)
    hours: Mapping[int, Slot] = field(default_factory=dict)

    def after(self, epoch: int) -> Activity:
        """Only the slots that start at or after ``epoch`` (a bucket's counts since its last trip)."""
        return Activity(
            minutes={m: s for m, s in self.minutes.items() if m * MINUTE >= epoch},
            hours={h: s for h, s in self.hours.items() if h * HOUR >= epoch},
        )


@dataclass(frozen=True)
class Rules:
    """The trip thresholds of one app (its ``Policy``)."""

    mode: Mode = Mode.BLOCK
    block_velocity: int = 10
    country_velocity: int = 50
    country_min_verified_percent: int = 20
    verification_lag_seconds: int = 120
    conversion_min_challenges: int = 20
    conversion_min_percent: int = 35
    block_seconds: int = 12 * HOUR
    code_ttl_seconds: int = 600


@dataclass(frozen=True)
class Trip:
    """One more challenge would trip ``bucket``: why, and the evidence (challenges and verified ones counted)."""

    bucket: Bucket
    reason: Reason
    sends: int
    verified: int


@dataclass(frozen=True)
class Counts:
    sends: int
    verified: int
    resent: int = 0
    undelivered: int = 0

    @property
    def delivered(self) -> int:
        """The challenges the conversion rules judge: those no receipt reported undelivered, with at most
        :data:`MAX_UNDELIVERED_SHARE` percent of the sends left out.

        Failure reports come from the carriers on the route, and in SMS pumping the terminating carrier may be
        the fraudster: one that bills for a message and reports it failed must not take its traffic out of the
        judgement. A genuine outage beyond the share shows as poor conversion, as it did without receipts.
        """
        excused = min(max(self.undelivered, 0), self.sends * MAX_UNDELIVERED_SHARE // 100)
        return self.sends - excused


def last_hour(activity: Activity, now: int, *, older_than: int = 0) -> Counts:
    """Challenges created in the last hour (the current minute and the 60 before it, so never fewer than an
    hour's), or only those created at least ``older_than`` seconds ago, and the verified ones among them."""
    current = now // MINUTE
    newest = current if older_than <= 0 else (now - older_than) // MINUTE - 1
    slots = [activity.minutes.get(m, Slot()) for m in range(current - 60, newest + 1)]
    return Counts(
        sum(s.created for s in slots),
        sum(s.verified for s in slots),
        sum(s.resent for s in slots),
        sum(s.undelivered for s in slots),
    )


def last_day(activity: Activity, now: int, *, older_than: int) -> Counts:
    """Challenges created in the last 24 hours and at least ``older_than`` seconds ago (``older_than`` at
    most an hour), and the verified ones among them: minute slots for the last two hours, hour slots before."""
    hour = now // HOUR
    first_minute = (hour - 1) * 60
    minutes = [s for m, s in activity.minutes.items() if m >= first_minute and (m + 1) * MINUTE <= now - older_than]
    first_hour = -(-(now - DAY) // HOUR)  # the first hour that starts inside the last 24 hours
    hours = [s for h, s in activity.hours.items() if first_hour <= h <= hour - 2]
    slots = minutes + hours
    return Counts(
        sum(s.created for s in slots), sum(s.verified for s in slots), undelivered=sum(s.undelivered for s in slots)
    )


def judge(bucket: Bucket, activity: Activity, now: int, rules: Rules) -> Trip | None:
    """Whether one more challenge to ``bucket`` at ``now`` trips it (see the module's rules)."""
    hour = last_hour(activity, now)
    if bucket.level == "prefix" and hour.sends >= rules.block_velocity:
        return Trip(bucket, Reason.VELOCITY, hour.sends, hour.verified)
    if bucket.level == "country" and hour.sends >= rules.country_velocity:
        old = last_hour(activity, now, older_than=rules.verification_lag_seconds)
        poor = old.delivered > 0 and old.verified * 100 < rules.country_min_verified_percent * old.delivered
        # A few verifications must not open a country to a burst the verification lag hides: each verified
        # challenge of the hour buys VERIFIED_ALLOWANCE more, no more.
        burst = hour.sends >= country_cap(rules, hour.verified)
        if hour.verified == 0 or poor or burst:
            return Trip(bucket, Reason.VELOCITY, hour.sends, hour.verified)
    day = last_day(activity, now, older_than=rules.code_ttl_seconds)
    delivered = day.delivered
    if delivered >= rules.conversion_min_challenges and day.verified * 100 < rules.conversion_min_percent * delivered:
        return Trip(bucket, Reason.CONVERSION, day.sends, day.verified)
    return None


@dataclass(frozen=True)
class FraudCharge:
    """How a send meets the fraud guard in the write that stores it.

    ``buckets`` (country first) are counted when ``count`` (a new challenge, mode not ``off``), in country
    shard ``shard``; trips are judged when ``judge`` (mode not ``off``, not safe-listed, not an enrolled
    owner's), and refuse the send in ``block`` mode. ``refused_by`` is the block in force (from the cached
    view) that refuses it whatever the counts say.
    """

    app_id: str
    buckets: tuple[Bucket, ...]
    shard: int
    rules: Rules
    count: bool
    judge: bool
    refused_by: Block | None = None
    # A resend: judged by judge_resend and counted as a resend (``count`` is False: no new challenge).
    resend: bool = False
    # Bucket name -> last trip: counts from before it are not judged again (see Guard.tripped).
    since: Mapping[str, int] = field(default_factory=dict)


def country_shard(challenge_id: str) -> int:
    """The country shard a challenge is counted in (and its verification too): spread by its random ID."""
    return int(challenge_id[:8], 16) % COUNTRY_SHARDS


# Challenges each verified challenge of the hour admits to a country beyond its velocity cap.
VERIFIED_ALLOWANCE = 5


def country_cap(rules: Rules, verified: int) -> int:
    """The most challenges a country takes in an hour with ``verified`` of them verified (a write condition)."""
    return rules.country_velocity + VERIFIED_ALLOWANCE * verified


def judge_resend(bucket: Bucket, activity: Activity, now: int, rules: Rules) -> Trip | None:
    """Whether a resend to ``bucket`` trips it: a bucket that would trip on a new challenge (see
    :func:`judge`), or whose SMS of the last hour (challenges and resends) reached twice its velocity cap with
    none verified (a country) or at all (a thousand-number block). Resends are no new challenges, but without
    this each challenge could be resent up to the per-number caps: a pumper's multiplier."""
    trip = judge(bucket, activity, now, rules)
    if trip is not None:
        return trip
    hour = last_hour(activity, now)
    sms = hour.sends + hour.resent
    if bucket.level == "prefix" and sms >= 2 * rules.block_velocity:
        return Trip(bucket, Reason.VELOCITY, hour.sends, hour.verified)
    if bucket.level == "country" and hour.verified == 0 and sms >= 2 * rules.country_velocity:
        return Trip(bucket, Reason.VELOCITY, hour.sends, hour.verified)
    return None


def block_seconds(rules: Rules, *, previous_trip_at: int | None, previous_seconds: int | None, now: int) -> int:
    """How long a trip blocks: 12 hours, or twice the previous block when the bucket tripped within 7 days."""
    if previous_trip_at is not None and previous_seconds and now - previous_trip_at <= REPEAT_WINDOW:
        return 2 * previous_seconds
    return rules.block_seconds


@dataclass(frozen=True)
class Block:
    """A block in force or on record: the app (``*`` for every app), the bucket, why, since and until when
    (``None``: a manual block without an end), and the evidence of a trip."""

    app_id: str
    bucket: Bucket
    reason: Reason
    since: int
    until: int | None
    sends: int = 0
    verified: int = 0
    trips: int = 0

    def active(self, now: int) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True)
class Guard:
    """What one app's sends are checked against: the blocks in force and the safe list (a cached view)."""

    blocks: tuple[Block, ...] = ()
    safe_list: tuple[str, ...] = ()
    # When each bucket last tripped (name -> epoch), for blocks in force or ended within a day: its counts from
    # before are evidence already acted on, and must not trip it again the moment its block ends.
    tripped: Mapping[str, int] = field(default_factory=dict)


def covers(bucket: Bucket, phone_number: str, region: str) -> bool:
    """True when a send to ``phone_number`` (in ``region``) falls in ``bucket``: its country, or a prefix of
    its digits at any length (a manual ``prefix:4477`` covers every number starting +4477)."""
    if bucket.level == "country":
        return bucket.value == country_of(region)
    return phone_number[1:].startswith(bucket.value)


def refusing_block(
    guard: Guard, phone_number: str, region: str, now: int, mode: Mode, *, enrolled: bool = False
) -> Block | None:
    """The block that refuses a send to ``phone_number`` (in ``region``), if any.

    Manual blocks refuse in every mode and over the safe list; blocks from trips only in ``block`` mode and
    never a safe-listed number, nor an owner's challenge to their enrolled number (``enrolled``).
    """
    safe = enrolled or is_safe(phone_number, guard.safe_list)
    for block in guard.blocks:
        if not block.active(now) or not covers(block.bucket, phone_number, region):
            continue
        if block.reason is Reason.MANUAL or (mode is Mode.BLOCK and not safe):
            return block
    return None
