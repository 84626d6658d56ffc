"""Each challenge's delivery record in DynamoDB: which provider took its SMS, the message ID and the outcome.

On the challenge item ``CHL#<challengeId>`` / ``CHL``: ``delivery`` = ``{provider, messageId, status, updatedAt}``
(never the body or the code). Every write is one ``UpdateItem`` whose condition carries the rule, so a late or
replayed callback cannot overwrite a newer send, and a send record cannot hide an outcome already reported.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import DependencyError
from otp_core.observability import logger, tracer
from otp_core.ports import DeliveryLog
from otp_core.records import SentSms

SENT, DELIVERED, FAILED = "sent", "delivered", "failed"
DELIVERY_STATUSES = frozenset({SENT, DELIVERED, FAILED})


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


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
            values.update({":message": _s(message_id), ":delivered": _s(DELIVERED), ":failed": _s(FAILED)})
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
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise DependencyError("the challenge store is unavailable; retry later") from exc
    except BotoCoreError as exc:
        raise DependencyError("the challenge store is unavailable; retry later") from exc
    return True


class DeliveryRecorder(DeliveryLog):
    """Records each accepted send on its challenge, and the outcome a provider's callback reports later.

    The SMS has already gone out when :meth:`record_sent` runs, so a failure to record it is logged and
    swallowed: the caller still gets its 201/200, and the delivery-status callback for that message is simply
    not matched later.

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
    def record_sent(self, challenge_id: str, sent: SentSms, at: int) -> None:
        try:
            record_delivery(self._client, self._table, challenge_id, sent.provider, sent.message_id, SENT, at)
        except DependencyError as exc:
            logger.warning("delivery record failed", challenge_id=challenge_id, error_type=type(exc.__cause__).__name__)

    @tracer.capture_method(capture_response=False)
    def record_outcome(self, challenge_id: str, provider: str, message_id: str | None, status: str, at: int) -> bool:
        return record_delivery(self._client, self._table, challenge_id, provider, message_id, status, at, callback=True)
