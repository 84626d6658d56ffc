"""The circuit breakers' shared state in DynamoDB: one item per provider, every change one conditional write.

Item ``CIRCUIT#<provider>`` / ``CIRCUIT`` in the service's one table: ``status`` (CLOSED, OPEN, HALF_OPEN; absent
means CLOSED), ``failures`` counted in fixed window ``window`` (epoch seconds // window length), ``openUntil``,
``probeUntil`` and ``ttl`` (housekeeping only; every deadline is checked in code).

Each condition below is the DynamoDB spelling of a rule of :mod:`otp_core.sms.breaker` (named at each method),
so concurrent Lambda instances cannot open, probe or close a circuit twice.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import DependencyError
from otp_core.observability import tracer
from otp_core.sms.breaker import CircuitState, CircuitStatus, CircuitStore

_NAMES = {
    "#status": "status",
    "#failures": "failures",
    "#window": "window",
    "#openUntil": "openUntil",
    "#probeUntil": "probeUntil",
    "#ttl": "ttl",
}
# How often count_failure retries when another instance started the same window concurrently.
_WINDOW_RACE_RETRIES = 3


def circuit_key(provider: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"CIRCUIT#{provider}"}, "sk": {"S": "CIRCUIT"}}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class DynamoCircuitStore(CircuitStore):
    """Circuit breaker state shared by every Lambda instance through the table.

    Parameters
    ----------
    client:
        A boto3 DynamoDB client.
    table:
        The table name.

    Raises
    ------
    DependencyError
        From every method when DynamoDB fails (the breaker logs it and tries the provider anyway).
    """

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    @tracer.capture_method(capture_response=False)
    def read(self, provider: str) -> CircuitState:
        try:
            response = self._client.get_item(TableName=self._table, Key=circuit_key(provider), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("circuit state unavailable") from exc
        item = response.get("Item") or {}

        def number(name: str) -> int:
            return int(item[name]["N"]) if name in item else 0

        status = item.get("status", {}).get("S", CircuitStatus.CLOSED.value)
        return CircuitState(
            status=CircuitStatus(status),
            failures=number("failures"),
            window=number("window"),
            open_until=number("openUntil"),
            probe_until=number("probeUntil"),
        )

    @tracer.capture_method(capture_response=False)
    def count_failure(self, provider: str, window: int, ttl: int) -> int:
        # counted_failures: the stored window grows, an older one restarts at one, a newer one is left alone.
        values = {":one": _n(1), ":window": _n(window), ":ttl": _n(ttl)}
        for _ in range(_WINDOW_RACE_RETRIES):
            # Most failures land in the current window: add one where the stored window is this one...
            counted = self._update(
                provider,
                "SET #failures = #failures + :one, #ttl = :ttl",
                "#window = :window",
                values,
            )
            if counted is not None:
                return counted
            # ...otherwise start this window at one, unless another instance has just started it.
            started = self._update(
                provider,
                "SET #failures = :one, #window = :window, #ttl = :ttl",
                "attribute_not_exists(#window) OR #window < :window",
                values,
            )
            if started is not None:
                return started
        # A clock far behind the stored window: report no failures rather than loop.
        return 0

    @tracer.capture_method(capture_response=False)
    def open(self, provider: str, *, expected: CircuitStatus, open_until: int, threshold: int, ttl: int) -> bool:
        # may_open
        values = {":open": _s(CircuitStatus.OPEN.value), ":until": _n(open_until), ":ttl": _n(ttl)}
        if expected is CircuitStatus.CLOSED:
            condition = "(attribute_not_exists(#status) OR #status = :expected) AND #failures >= :threshold"
            values[":threshold"] = _n(threshold)
        else:
            condition = "#status = :expected"
        values[":expected"] = _s(expected.value)
        return (
            self._update(provider, "SET #status = :open, #openUntil = :until, #ttl = :ttl", condition, values)
            is not None
        )

    @tracer.capture_method(capture_response=False)
    def start_probe(self, provider: str, *, now: int, probe_until: int, ttl: int) -> bool:
        # may_start_probe
        values = {
            ":open": _s(CircuitStatus.OPEN.value),
            ":half": _s(CircuitStatus.HALF_OPEN.value),
            ":now": _n(now),
            ":until": _n(probe_until),
            ":ttl": _n(ttl),
        }
        condition = "(#status = :open AND #openUntil <= :now) OR (#status = :half AND #probeUntil <= :now)"
        update = "SET #status = :half, #probeUntil = :until, #ttl = :ttl"
        return self._update(provider, update, condition, values) is not None

    @tracer.capture_method(capture_response=False)
    def close(self, provider: str, *, ttl: int) -> bool:
        # may_close
        values = {
            ":closed": _s(CircuitStatus.CLOSED.value),
            ":half": _s(CircuitStatus.HALF_OPEN.value),
            ":zero": _n(0),
            ":ttl": _n(ttl),
        }
        update = "SET #status = :closed, #failures = :zero, #ttl = :ttl"
        return self._update(provider, update, "#status = :half", values) is not None

    def _update(self, provider: str, update: str, condition: str, values: dict[str, dict[str, str]]) -> int | None:
        """Run one conditional update; the new failure count when it applied, None when its condition failed."""
        names = {name: attr for name, attr in _NAMES.items() if name in update or name in condition}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=circuit_key(provider),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: v for k, v in values.items() if k in update or k in condition},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise DependencyError("circuit state unavailable") from exc
        except BotoCoreError as exc:
            raise DependencyError("circuit state unavailable") from exc
        return int(response.get("Attributes", {}).get("failures", {}).get("N", "0"))
