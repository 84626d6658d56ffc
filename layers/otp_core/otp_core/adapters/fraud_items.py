"""Table items of the fraud guard and the spend guard (keys and decoding; the writes are the repository's).

- ``FG#<app>#<bucket>#<shard>`` / ``H#<hour>``: a bucket's challenges per minute of that hour (``c<minute>``),
  the verified ones by creation minute (``v<minute>``), those a signed receipt reported undelivered
  (``u<minute>``), resends (``r<minute>``) and the hour's total of challenges (``ct``, the write's condition
  of the velocity caps). ``D#<day>``: the same per hour of that day (``c<hour>``, ``v<hour>``, ``u<hour>``).
  A country has :data:`otp_core.fraud.COUNTRY_SHARDS` shards, a prefix one.
- ``BUDGET#<scope>#<window>#<shard>`` / ``<window index>``: parts sent (``n``) in that window.
- ``FRAUD`` / ``BLOCK#<app>#<bucket>`` and ``SAFE#<app>``: blocks (with their trip history) and safe lists,
  one partition the functions read with one cached query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from otp_core.fraud import DAY, HOUR, MINUTE, Activity, Bucket, Slot
from otp_core.spend import Budget

Item = dict[str, dict[str, Any]]
Ref = tuple[str, str]
FRAUD_PARTITION = "FRAUD"
# Activity stays two windows plus a margin: the previous hour's minutes and the previous day's hours are read.
_HOUR_ITEM_TTL = 3 * HOUR
_DAY_ITEM_TTL = 3 * DAY


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _pk(app_id: str, bucket: Bucket, shard: int) -> str:
    return f"FG#{app_id}#{bucket.name}#{shard}"


def hour_key(app_id: str, bucket: Bucket, shard: int, hour: int) -> Item:
    return {"pk": _s(_pk(app_id, bucket, shard)), "sk": _s(f"H#{hour}")}


def day_key(app_id: str, bucket: Bucket, shard: int, day: int) -> Item:
    return {"pk": _s(_pk(app_id, bucket, shard)), "sk": _s(f"D#{day}")}


def hour_ttl(hour: int) -> int:
    return (hour + 1) * HOUR + _HOUR_ITEM_TTL


def day_ttl(day: int) -> int:
    return (day + 1) * DAY + _DAY_ITEM_TTL


def activity_keys(app_id: str, bucket: Bucket, now: int) -> list[Item]:
    """Every item the activity of ``bucket`` at ``now`` is read from (all shards, current and previous)."""
    hour, day = now // HOUR, now // DAY
    keys = []
    for shard in range(bucket.shards):
        keys += [hour_key(app_id, bucket, shard, h) for h in (hour, hour - 1)]
        keys += [day_key(app_id, bucket, shard, d) for d in (day, day - 1)]
    return keys


def ref(key: Item) -> Ref:
    return key["pk"]["S"], key["sk"]["S"]


def activity(
    app_id: str, bucket: Bucket, now: int, items: Mapping[Ref, Item], *, shards: Iterable[int] | None = None
) -> Activity:
    """A bucket's activity from its items as read (absent items count nothing), summed over its shards or
    over ``shards`` only."""
    minutes: dict[int, tuple[int, int, int, int]] = {}
    hours: dict[int, tuple[int, int, int, int]] = {}
    hour, day = now // HOUR, now // DAY
    for shard in range(bucket.shards) if shards is None else shards:
        for h in (hour, hour - 1):
            _add(minutes, items.get(ref(hour_key(app_id, bucket, shard, h))), h * 60, 60)
        for d in (day, day - 1):
            _add(hours, items.get(ref(day_key(app_id, bucket, shard, d))), d * 24, 24)
    return Activity(
        minutes={m: Slot(c, v, r, u) for m, (c, v, r, u) in minutes.items()},
        hours={h: Slot(c, v, undelivered=u) for h, (c, v, _, u) in hours.items()},
    )


_KINDS = "cvru"


def _add(into: dict[int, tuple[int, int, int, int]], item: Item | None, base: int, slots: int) -> None:
    """Add an item's ``c<slot>``/``v<slot>``/``r<slot>``/``u<slot>`` counts (only those present) into ``into``."""
    if not item:
        return
    for name, value in item.items():
        kind, index = name[:1], name[1:]
        if kind not in _KINDS or not kind or not index.isdigit() or int(index) >= slots:
            continue
        counts = list(into.get(base + int(index), (0, 0, 0, 0)))
        counts[_KINDS.index(kind)] += int(value["N"])
        into[base + int(index)] = (counts[0], counts[1], counts[2], counts[3])


def creation_slots(
    app_id: str, phone_number: str, region: str, challenge_id: str, created_at: int, now: int
) -> list[tuple[Item, str, int]]:
    """Where a challenge's later outcome (verified ``v``, undelivered ``u``) is counted: (item key, slot suffix,
    item TTL) of its creation minute and hour in each of its buckets, while those items are still read."""
    from otp_core import fraud as fr

    targets = []
    hour, minute = minute_of(created_at)
    day, hour_of_day = hour_of(created_at)
    for destination in fr.destination_buckets(phone_number, region):
        shard = fr.country_shard(challenge_id) % destination.shards
        if hour >= now // fr.HOUR - 1:
            targets.append((hour_key(app_id, destination, shard, hour), str(minute), hour_ttl(hour)))
        if day >= now // fr.DAY - 1:
            targets.append((day_key(app_id, destination, shard, day), str(hour_of_day), day_ttl(day)))
    return targets


def hour_total(item: Item | None) -> int:
    """The ``ct`` of an hour item (0 when absent): the thousand-number block's write condition."""
    return int(item["ct"]["N"]) if item and "ct" in item else 0


def minute_of(epoch: int) -> tuple[int, int]:
    """(hour index, minute of that hour) of an epoch second."""
    return epoch // HOUR, (epoch // MINUTE) % 60


def hour_of(epoch: int) -> tuple[int, int]:
    """(day index, hour of that day) of an epoch second."""
    return epoch // DAY, (epoch // HOUR) % 24


def budget_key(budget: Budget, shard: int, now: int) -> Item:
    return {"pk": _s(f"BUDGET#{budget.scope}#{budget.window}#{shard}"), "sk": _s(str(budget.bucket(now)))}


def budget_keys(budgets: Iterable[Budget], now: int) -> list[Item]:
    return [budget_key(budget, shard, now) for budget in budgets for shard in range(budget.shards)]


def block_key(app_id: str, bucket: Bucket) -> Item:
    return {"pk": _s(FRAUD_PARTITION), "sk": _s(f"BLOCK#{app_id}#{bucket.name}")}


def safe_key(app_id: str) -> Item:
    return {"pk": _s(FRAUD_PARTITION), "sk": _s(f"SAFE#{app_id}")}


def slot_increments(
    table: str,
    app_id: str,
    phone_number: str,
    region: str,
    challenge_id: str,
    created_at: int,
    now: int,
    *,
    kind: str,
    change: int = 1,
) -> list[dict[str, Any]]:
    """The ``Update`` items that move a challenge's ``kind`` count (``v`` verified, ``u`` undelivered) by
    ``change`` in its creation slots (:func:`creation_slots`), for a transaction."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "ADD #count :change SET #ttl = if_not_exists(#ttl, :ttl)",
                "ExpressionAttributeNames": {"#count": f"{kind}{slot}", "#ttl": "ttl"},
                "ExpressionAttributeValues": {":change": {"N": str(change)}, ":ttl": {"N": str(ttl)}},
            }
        }
        for key, slot, ttl in creation_slots(app_id, phone_number, region, challenge_id, created_at, now)
    ]
