"""DynamoDB implementation of the identity repository, in the challenges' table.

Items: ``USER#<userId>`` / ``AUTH#SMS`` (the SMS authenticator), ``USER#<userId>`` / ``DEVICE#<deviceKey>``
(a device that completed a challenge or was allowed in), ``TRACK#<attemptId>`` / ``TRACK`` (a tracked
attempt), ``PTR#<key>`` / ``PTR`` (where a signed-in user's pending challenge is), ``USED#<jti>`` / ``USED``
(a token that has been validated).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.adapters.dynamodb import (
    _DEVICE_RETENTION,
    Item,
    _n,
    _s,
    attempt_key,
    authenticator_from_item,
    authenticator_key,
    authenticator_update,
    device_key_of,
    pointer_key,
)
from otp_core.errors import DependencyError
from otp_core.ports import Authenticator, IdentityRepository, TrackedAttempt

_UNAVAILABLE = "the identity store is unavailable; retry later"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoIdentityRepository(IdentityRepository):
    """Identity records in one DynamoDB table.

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

    def _get(self, key: Item) -> Item | None:
        try:
            item: Item | None = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        return item

    def get_authenticator(self, user_id: str) -> Authenticator | None:
        item = self._get(authenticator_key(user_id))
        return authenticator_from_item(item) if item else None

    def put_authenticator(self, authenticator: Authenticator) -> Authenticator:
        try:
            response = self._client.update_item(
                TableName=self._table, ReturnValues="ALL_NEW", **authenticator_update(authenticator)
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        return authenticator_from_item(response["Attributes"])

    def delete_authenticator(self, user_id: str, authenticator_id: str) -> bool:
        return self._conditional(
            self._client.delete_item,
            Key=authenticator_key(user_id),
            ConditionExpression="authenticatorId = :id",
            ExpressionAttributeValues={":id": _s(authenticator_id)},
        )

    def _conditional(self, write: Any, **request: Any) -> bool:
        """Run one conditional write; False when its condition did not hold."""
        try:
            write(TableName=self._table, **request)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise DependencyError(_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        return True

    def put_attempt(self, attempt: TrackedAttempt, *, seen_device: bool) -> None:
        item: Item = {
            **attempt_key(attempt.attempt_id),
            "attemptId": _s(attempt.attempt_id),
            "userId": _s(attempt.user_id),
            "action": _s(attempt.action),
            "state": _s(attempt.state),
            "createdAt": _n(attempt.created_at),
            "expiresAt": _n(attempt.expires_at),
            "ttl": _n(attempt.expires_at + 86_400),
        }
        if attempt.device_key:
            item["deviceKey"] = _s(attempt.device_key)
        put = {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        try:
            if seen_device and attempt.device_key:
                device = {
                    **device_key_of(attempt.user_id, attempt.device_key),
                    "seenAt": _n(attempt.created_at),
                    "ttl": _n(attempt.created_at + _DEVICE_RETENTION),
                }
                self._client.transact_write_items(
                    TransactItems=[{"Put": put}, {"Put": {"TableName": self._table, "Item": device}}]
                )
            else:
                self._client.put_item(**put)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(_UNAVAILABLE) from exc

    def get_attempt(self, attempt_id: str) -> TrackedAttempt | None:
        item = self._get(attempt_key(attempt_id))
        if not item:
            return None
        return TrackedAttempt(
            attempt_id=item["attemptId"]["S"],
            user_id=item["userId"]["S"],
            action=item["action"]["S"],
            state=item["state"]["S"],
            device_key=item["deviceKey"]["S"] if "deviceKey" in item else None,
            created_at=int(item["createdAt"]["N"]),
            expires_at=int(item["expiresAt"]["N"]),
            challenge_id=item["challengeId"]["S"] if "challengeId" in item else None,
        )

    def is_known_device(self, user_id: str, device_key: str) -> bool:
        return self._get(device_key_of(user_id, device_key)) is not None

    def get_pointer(self, key: str) -> str | None:
        item = self._get(pointer_key(key))
        return item["challengeId"]["S"] if item else None

    def consume_token(self, token_id: str, expires_at: int) -> bool:
        return self._conditional(
            self._client.put_item,
            Item={"pk": _s(f"USED#{token_id}"), "sk": _s("USED"), "ttl": _n(expires_at + 3_600)},
            ConditionExpression="attribute_not_exists(pk)",
        )
