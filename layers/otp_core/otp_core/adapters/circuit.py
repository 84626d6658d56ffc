"""DynamoDB state of SMS delivery: the providers' shared circuit breakers and each challenge's delivery outcome.

Items, in the service's one table:

- ``CIRCUIT#<provider>`` / ``CIRCUIT``: ``status`` (CLOSED, OPEN, HALF_OPEN; absent means CLOSED),
  ``failures`` counted in fixed window ``window`` (epoch seconds // window length), ``openUntil``,
  ``probeUntil`` and ``ttl`` (housekeeping only; every deadline is checked in code).
- On the challenge item ``CHL#<challengeId>`` / ``CHL``: ``delivery`` = ``{provider, messageId, status,
  updatedAt}`` (never the body or the code).

Every change is one ``UpdateItem`` whose condition carries the rule, so concurrent Lambda instances cannot
open, probe or close a circuit twice, and a late or replayed callback cannot overwrite a newer send.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import DependencyError
from otp_core.observability import logger
from otp_core.ports import DeliveryLog
from otp_core.providers.circuit import CircuitState, CircuitStatus, CircuitStore
from otp_core.records import SentSms

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

DELIVERY_STATUSES = frozenset({"sent", "delivered", "failed"})


def circuit_key(provider: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"CIRCUIT#{provider}"}, "sk": {"S": "CIRCUIT"}}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _is_condition_failure(exc: ClientError) -> bool:
    code: object = exc.response.get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


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

    def count_failure(self, provider: str, window: int, ttl: int) -> int:
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

    def open(self, provider: str, *, expected: CircuitStatus, open_until: int, threshold: int, ttl: int) -> bool:
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

    def start_probe(self, provider: str, *, now: int, probe_until: int, ttl: int) -> bool:
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

    def close(self, provider: str, *, ttl: int) -> bool:
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
            if _is_condition_failure(exc):
                return None
            raise DependencyError("circuit state unavailable") from exc
        except BotoCoreError as exc:
            raise DependencyError("circuit state unavailable") from exc
        return int(response.get("Attributes", {}).get("failures", {}).get("N", "0"))


def record_delivery(
    dynamodb_client: Any,
    table: str,
    challenge_id: str,
    provider: str,
    message_id: str | None,
    status: str,
    at: int,
    *,
    callback: bool = False,
) -> bool:
    """Record which provider sent a challenge's SMS, its message ID and the outcome (never the body or code).

    Parameters
    ----------
    dynamodb_client:
        A boto3 DynamoDB client.
    table:
        The table name.
    challenge_id:
        The challenge the SMS belongs to.
    provider:
        The provider that accepted it.
    message_id:
        The provider's message ID (None when it returned none).
    status:
        ``sent`` (after sending), ``delivered`` or ``failed`` (from a status callback).
    at:
        Epoch seconds of the event.
    callback:
        False after sending: replace ``delivery`` with this send (a resend replaces the previous one).
        True for a status callback: update only ``status`` and ``updatedAt``, and only if the recorded delivery
        is this provider's (and this ``message_id``, when given). A callback for an earlier send of the
        challenge, or one naming another message, then changes nothing, and a replayed callback writes what is
        already there.

    Returns
    -------
    bool
        True when written; False when the challenge does not exist (unknown, or expired and removed) or the
        condition refused the write.

    Raises
    ------
    ValueError
        An unknown status.
    DependencyError
        DynamoDB failed.
    """
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"unknown delivery status: {status}")
    names = {"#delivery": "delivery"}
    values: dict[str, Any]
    if callback:
        update = "SET #delivery.#status = :status, #delivery.updatedAt = :at"
        condition = "attribute_exists(pk) AND #delivery.provider = :provider"
        names["#status"] = "status"
        values = {":status": _s(status), ":at": _n(at), ":provider": _s(provider)}
        if message_id is not None:
            condition += " AND #delivery.messageId = :message"
            values[":message"] = _s(message_id)
    else:
        delivery: dict[str, Any] = {"provider": _s(provider), "status": _s(status), "updatedAt": _n(at)}
        if message_id is not None:
            delivery["messageId"] = _s(message_id)
        update = "SET #delivery = :delivery"
        condition = "attribute_exists(pk)"
        values = {":delivery": {"M": delivery}}
        if message_id is not None:
            # A fast callback can overtake the write made after sending: never turn its outcome back into "sent".
            condition += " AND NOT (#delivery.messageId = :message AND #delivery.#status IN (:delivered, :failed))"
            names["#status"] = "status"
            values.update({":message": _s(message_id), ":delivered": _s("delivered"), ":failed": _s("failed")})
    try:
        dynamodb_client.update_item(
            TableName=table,
            Key={"pk": _s(f"CHL#{challenge_id}"), "sk": _s("CHL")},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if _is_condition_failure(exc):
            return False
        raise DependencyError("the challenge store is unavailable; retry later") from exc
    except BotoCoreError as exc:
        raise DependencyError("the challenge store is unavailable; retry later") from exc
    return True


class DeliveryRecorder(DeliveryLog):
    """Records each accepted send on its challenge, for the service to call after a successful send.

    The SMS has already gone out when this runs, so a failure to record is logged and swallowed: the caller
    still gets its 201/200, and the delivery-status callback for that message is simply not matched later.

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

    def record_sent(self, challenge_id: str, sent: SentSms, at: int) -> None:
        try:
            record_delivery(self._client, self._table, challenge_id, sent.provider, sent.message_id, "sent", at)
        except DependencyError as exc:
            logger.warning("delivery record failed", challenge_id=challenge_id, error_type=type(exc.__cause__).__name__)
