"""Each challenge's delivery record in DynamoDB: what a provider's signed receipt reported of its SMS.

Nothing is written when an SMS goes out: the challenge ID and the send number (0 the first, n the n-th resend)
travel with the message (EUM's ``Context``, Twilio's signed callback URL, the webhook's body, Vonage's
``client-ref``, MessageMedia's metadata), so a create costs one table write and one send. A receipt then sets,
on the challenge item ``CHL#<challengeId>`` / ``CHL``, ``delivery`` = ``{provider, messageId, status, send,
updatedAt}`` (never the body or the code), in one transaction whose conditions carry the rules:

- only a receipt about the challenge's latest send is recorded (``resends`` equals its send), so a late receipt
  of an earlier send changes nothing;
- a send's outcome is recorded once: a replayed or duplicate receipt (the same send, already recorded) changes
  nothing and counts nothing;
- an undelivered SMS is counted (``u`` slot) in the fraud buckets of the challenge's creation slot, in the same
  transaction, and a later delivered send of the same challenge takes that count back, so the conversion rules
  see exactly the challenges whose latest SMS was not delivered.

The challenge is read first for what the write needs (its buckets, its previous record); the conditions pin
that record, so a concurrent receipt makes one of the two writes fail and change nothing.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import DependencyError
from otp_core.observability import tracer
from otp_core.ports import DeliveryLog
from otp_core.records import Challenge

SENT, DELIVERED, FAILED = "sent", "delivered", "failed"
OUTCOMES = frozenset({DELIVERED, FAILED})


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class DeliveryRecorder(DeliveryLog):
    """Records the outcome a provider's receipt reports on its challenge (see the module's rules).

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

    @tracer.capture_method(capture_response=False)
    def record_outcome(
        self, challenge_id: str, provider: str, message_id: str | None, status: str, send: int | None, at: int
    ) -> Challenge | None:
        if status not in OUTCOMES:
            raise ValueError(f"unknown delivery status: {status}")
        # The adapters' modules load with the first receipt, not in every function's import.
        from otp_core.adapters.dynamodb import challenge_key, from_item

        key = challenge_key(challenge_id)
        found = self._call("get_item", TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        if not found:
            return None
        challenge = from_item(found)
        if send is not None and send != challenge.resends:
            return None  # a receipt of an earlier send (or one this challenge never made)
        previous = challenge.delivery
        if previous is not None and previous.status in OUTCOMES and (send is None or previous.send == send):
            return None  # this send's outcome is recorded: a replay or a duplicate changes nothing

        delivery: dict[str, Any] = {"provider": _s(provider), "status": _s(status), "updatedAt": _n(at)}
        if message_id is not None:
            delivery["messageId"] = _s(message_id)
        if send is not None:
            delivery["send"] = _n(send)
        names = {"#delivery": "delivery"}
        values: dict[str, Any] = {":delivery": {"M": delivery}, ":resends": _n(challenge.resends)}
        condition = "attribute_exists(pk) AND resends = :resends"
        if previous is None:
            condition += " AND attribute_not_exists(#delivery)"
        else:
            # The record read, exactly: a concurrent receipt's write makes this one fail.
            condition += " AND #delivery.#status = :previous AND #delivery.updatedAt = :previousAt"
            names["#status"] = "status"
            values[":previous"] = _s(previous.status)
            values[":previousAt"] = found["delivery"]["M"].get("updatedAt", _n(-1))
        update = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": "SET #delivery = :delivery",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        # Only a failure this code counted (it writes a send number) is taken back: a record from before receipts
        # named their send never added to the buckets.
        was_failed = previous is not None and previous.status == FAILED and previous.send is not None
        change = 1 if status == FAILED and not was_failed else -1 if status == DELIVERED and was_failed else 0
        operations = [{"Update": update}, *self._undelivered(challenge, change, at)]
        try:
            self._client.transact_write_items(TransactItems=operations)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return None  # a concurrent receipt (or a resend) got there first
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        except BotoCoreError as exc:
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        return from_item({**found, "delivery": {"M": delivery}})

    def _undelivered(self, challenge: Challenge, change: int, now: int) -> list[dict[str, Any]]:
        """The fraud buckets' ``u`` counts of the challenge's creation slot, moved by ``change``."""
        if change == 0 or challenge.test or challenge.fraud_app is None or challenge.region is None:
            return []
        from otp_core.adapters import fraud_items as fi

        return fi.slot_increments(
            self._table,
            challenge.fraud_app,
            challenge.phone_number,
            challenge.region,
            challenge.challenge_id,
            challenge.created_at,
            now,
            kind="u",
            change=change,
        )

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**request)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        return answer
