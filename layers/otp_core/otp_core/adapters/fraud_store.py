"""DynamoDB store of the fraud guard's blocks and safe lists (partition ``FRAUD``), and its 5-second cache.

Every function that sends reads the whole partition with one query at most every
:data:`GUARD_CACHE_SECONDS` (the contract lets an operator's change take up to 5 seconds); trips and operator
changes are single conditional writes. A block item outlives its block by the 7 days a repeat trip doubles
within, so the doubling can be decided; an operator's unblock deletes it and the bucket's counts, so both
start afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.adapters.fraud_items import FRAUD_PARTITION, activity_keys, block_key, safe_key
from otp_core.errors import DependencyError
from otp_core.fraud import DAY, REPEAT_WINDOW, Block, Bucket, Guard, Reason, Rules, Trip, block_seconds, parse_bucket
from otp_core.observability import logger, tracer
from otp_core.ports import FraudStore
from otp_core.records import EVERY_APP

Item = dict[str, dict[str, Any]]
GUARD_CACHE_SECONDS = 4.0


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def block_from_item(item: Item) -> Block:
    return Block(
        app_id=item["appId"]["S"],
        bucket=parse_bucket(item["bucket"]["S"]),
        reason=Reason(item["reason"]["S"]),
        since=int(item["since"]["N"]),
        until=int(item["until"]["N"]) if "until" in item else None,
        sends=int(item.get("sends", {}).get("N", 0)),
        verified=int(item.get("verified", {}).get("N", 0)),
        trips=int(item.get("trips", {}).get("N", 0)),
    )


class DynamoFraudStore(FraudStore):
    """Blocks and safe lists on the service's table.

    Parameters
    ----------
    client:
        A boto3 DynamoDB client.
    table:
        The table name.
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    # -- the functions' view ------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def guard(self, app_id: str, now: int) -> Guard:
        return guard_of(self.partition(), app_id, now)

    def partition(self) -> list[Item]:
        """Every block and safe list of the stack, in one (paginated) strongly consistent query."""
        items: list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": _s(FRAUD_PARTITION)},
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self._call("query", **request)
            items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return items

    # -- trips ----------------------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def record_trip(self, app_id: str, trip: Trip, now: int, rules: Rules) -> Block:
        key = block_key(app_id, trip.bucket)
        for _ in range(3):
            old = self._call("get_item", TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            try:
                if old is not None and block_from_item(old).active(now):
                    return block_from_item(old)  # a block in force (a trip's or an operator's) is not changed
            except (KeyError, ValueError):
                logger.error("unreadable fraud block item replaced", bucket=trip.bucket.name)
                old = None
            last_trip = int(old["lastTripAt"]["N"]) if old and "lastTripAt" in old else None
            last_seconds = int(old["lastSeconds"]["N"]) if old and "lastSeconds" in old else None
            seconds = block_seconds(rules, previous_trip_at=last_trip, previous_seconds=last_seconds, now=now)
            repeat = last_trip is not None and now - last_trip <= REPEAT_WINDOW
            trips = (int(old["trips"]["N"]) if old and "trips" in old else 0) + 1 if repeat else 1
            block = Block(app_id, trip.bucket, trip.reason, now, now + seconds, trip.sends, trip.verified, trips)
            item = {
                **key,
                "appId": _s(app_id),
                "bucket": _s(trip.bucket.name),
                "reason": _s(trip.reason.value),
                "since": _n(now),
                "until": _n(now + seconds),
                "sends": _n(trip.sends),
                "verified": _n(trip.verified),
                "trips": _n(trips),
                "lastTripAt": _n(now),
                "lastSeconds": _n(seconds),
                "ttl": _n(now + seconds + REPEAT_WINDOW),
            }
            # Unchanged since the read: two sends tripping the bucket at once block it once, not twice as long.
            condition = (
                {"ConditionExpression": "attribute_not_exists(pk)"}
                if old is None
                else {
                    "ConditionExpression": "#since = :since",
                    "ExpressionAttributeNames": {"#since": "since"},
                    "ExpressionAttributeValues": {":since": old["since"]},
                }
            )
            try:
                self._client.put_item(TableName=self._table, Item=item, **condition)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise DependencyError("the fraud guard's store is unavailable; retry later") from exc
                continue
            except BotoCoreError as exc:
                raise DependencyError("the fraud guard's store is unavailable; retry later") from exc
            # The evidence is on the block; the counts stay (functions whose cached view is a few seconds old
            # still meet them) and are judged from the trip on (Guard.tripped).
            return block
        old = self._call("get_item", TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if old is None:
            raise DependencyError("the fraud guard's store is unavailable; retry later")
        return block_from_item(old)

    # -- operators ------------------------------------------------------------------------------------------

    def blocks(self, app_id: str, now: int) -> list[Block]:
        return list(guard_of(self.partition(), app_id, now).blocks)

    def put_block(self, block: Block) -> Block:
        values: dict[str, Any] = {
            ":app": _s(block.app_id),
            ":bucket": _s(block.bucket.name),
            ":reason": _s(Reason.MANUAL.value),
            ":since": _n(block.since),
            ":zero": _n(0),
        }
        expression = "SET #app = :app, #bucket = :bucket, #reason = :reason, #since = :since, #sends = :zero, "
        expression += "#verified = :zero"
        if block.until is None:
            expression += " REMOVE #until, #ttl"
        else:
            values[":until"] = _n(block.until)
            values[":ttl"] = _n(block.until + REPEAT_WINDOW)
            expression += ", #until = :until, #ttl = :ttl"
        self._call(
            "update_item",
            TableName=self._table,
            Key=block_key(block.app_id, block.bucket),
            UpdateExpression=expression,
            ExpressionAttributeNames={
                "#until": "until",
                "#ttl": "ttl",
                "#app": "appId",
                "#bucket": "bucket",
                "#reason": "reason",
                "#since": "since",
                "#sends": "sends",
                "#verified": "verified",
            },
            ExpressionAttributeValues=values,
        )
        return Block(block.app_id, block.bucket, Reason.MANUAL, block.since, block.until)

    def delete_block(self, app_id: str, bucket: Bucket, now: int) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=block_key(app_id, bucket),
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#until) OR #until > :now)",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": _n(now)},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise DependencyError("the fraud guard's store is unavailable; retry later") from exc
        except BotoCoreError as exc:
            raise DependencyError("the fraud guard's store is unavailable; retry later") from exc
        if app_id != EVERY_APP:
            self._reset_counts(app_id, bucket, now)
        return True

    def _reset_counts(self, app_id: str, bucket: Bucket, now: int) -> None:
        """Delete the bucket's activity items, so an unblocked bucket does not trip again on old counts."""
        keys = activity_keys(app_id, bucket, now)
        for start in range(0, len(keys), 25):
            pending: list[dict[str, Any]] = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            for _ in range(5):
                response = self._call("batch_write_item", RequestItems={self._table: pending})
                pending = response.get("UnprocessedItems", {}).get(self._table, [])
                if not pending:
                    break
            if pending:
                raise DependencyError("the fraud guard's store is unavailable; retry later")

    def safe_list(self, app_id: str) -> tuple[str, ...]:
        item = self._call("get_item", TableName=self._table, Key=safe_key(app_id), ConsistentRead=True).get("Item")
        return tuple(entry["S"] for entry in item["entries"]["L"]) if item and "entries" in item else ()

    def put_safe_list(self, app_id: str, entries: tuple[str, ...]) -> tuple[str, ...]:
        item = {**safe_key(app_id), "appId": _s(app_id), "entries": {"L": [_s(entry) for entry in entries]}}
        self._call("put_item", TableName=self._table, Item=item)
        return entries

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**request)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("the fraud guard's store is unavailable; retry later") from exc
        return response


def guard_of(items: list[Item], app_id: str, now: int) -> Guard:
    """The view of one app from the partition's items: its blocks in force (and every app's), its safe list."""
    blocks, safe, tripped = [], (), {}
    for item in items:
        sort_key = item["sk"]["S"]
        if sort_key.startswith("BLOCK#") and item.get("appId", {}).get("S") in (app_id, EVERY_APP):
            try:
                block = block_from_item(item)
            except (KeyError, ValueError):
                # One unreadable item must not stop every send; it is reported, and skipped.
                logger.error("unreadable fraud block item skipped", sort_key=sort_key)
                continue
            if block.active(now):
                blocks.append(block)
            last_trip = item.get("lastTripAt", {}).get("N")
            if block.app_id == app_id and last_trip is not None and now - int(last_trip) <= DAY:
                tripped[block.bucket.name] = int(last_trip)
        elif sort_key == f"SAFE#{app_id}" and "entries" in item:
            safe = tuple(entry.get("S", "") for entry in item["entries"].get("L", []))
    blocks.sort(key=lambda block: (block.since, block.app_id, block.bucket))
    return Guard(tuple(blocks), safe, tripped)


class CachedFraudStore(FraudStore):
    """The functions' view of a store: ``guard`` from one query of the partition at most every few seconds,
    everything else passed through (and a write drops the cached view, so this function sees it at once)."""

    def __init__(
        self,
        store: DynamoFraudStore,
        *,
        max_age: float = GUARD_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_age = max_age
        self._clock = clock
        self._items: list[Item] | None = None
        self._read_at = 0.0

    def guard(self, app_id: str, now: int) -> Guard:
        if self._items is None or self._clock() - self._read_at >= self._max_age:
            self._items = self._store.partition()
            self._read_at = self._clock()
        return guard_of(self._items, app_id, now)

    def record_trip(self, app_id: str, trip: Trip, now: int, rules: Rules) -> Block:
        self._items = None
        return self._store.record_trip(app_id, trip, now, rules)

    def blocks(self, app_id: str, now: int) -> list[Block]:
        return self._store.blocks(app_id, now)

    def put_block(self, block: Block) -> Block:
        self._items = None
        return self._store.put_block(block)

    def delete_block(self, app_id: str, bucket: Bucket, now: int) -> bool:
        self._items = None
        return self._store.delete_block(app_id, bucket, now)

    def safe_list(self, app_id: str) -> tuple[str, ...]:
        return self._store.safe_list(app_id)

    def put_safe_list(self, app_id: str, entries: tuple[str, ...]) -> tuple[str, ...]:
        self._items = None
        return self._store.put_safe_list(app_id, entries)
