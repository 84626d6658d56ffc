"""DynamoDB implementation of the identity repository, in the challenges' table.

Items: ``USER#<userId>`` / ``AUTH#SMS`` (the SMS authenticator), ``USER#<userId>`` / ``DEVICE#<deviceKey>``
(a device that completed a challenge), ``USER#<userId>`` / ``DEVICE#<deviceKey>#ACT#<action>`` (a device allowed in
for one action), ``TRACK#<attemptId>`` / ``TRACK`` (a tracked
attempt), ``PTR#<key>`` / ``PTR`` (where a signed-in user's pending challenge is), ``USED#<jti>`` / ``USED``
(a token that has been validated). Every key of an app but ``default`` starts with ``APP#<appId>#`` (see
:class:`otp_core.adapters.dynamodb.Keys`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.adapters.dynamodb import (
    _DEVICE_RETENTION,
    Item,
    Keys,
    _n,
    _s,
    authenticator_from_item,
    replace_condition,
)
from otp_core.errors import DependencyError
from otp_core.observability import tracer
from otp_core.ports import IdentityRepository
from otp_core.records import DEFAULT_APP, Authenticator, TrackedAttempt

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
    app_id:
        The app whose users these are (``user-123`` of two apps is two users: keys carry the app).
    """

    def __init__(self, client: Any, table: str, *, app_id: str = DEFAULT_APP) -> None:
        self._client = client
        self._table = table
        self._keys = Keys(app_id)

    def _get(self, key: Item) -> Item | None:
        try:
            item: Item | None = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        return item

    @tracer.capture_method(capture_response=False)
    def get_authenticator(self, user_id: str) -> Authenticator | None:
        item = self._get(self._keys.authenticator(user_id))
        return authenticator_from_item(item) if item else None

    @tracer.capture_method(capture_response=False)
    def put_authenticator(self, authenticator: Authenticator) -> Authenticator:
        # The read only chooses the write; its condition makes a concurrent change fail and be read again.
        for _ in range(4):
            current = self.get_authenticator(authenticator.user_id)
            if current is not None and current.phone_number == authenticator.phone_number:
                stored = dataclasses.replace(current, verified_at=authenticator.verified_at)
                replaces: str | None = current.authenticator_id
            else:
                stored = authenticator
                replaces = current.authenticator_id if current is not None else None
            if self._conditional(
                self._client.put_item, Item=self._keys.authenticator_item(stored), **replace_condition(replaces)
            ):
                return stored
        raise DependencyError("the authenticator changed concurrently; retry")

    @tracer.capture_method(capture_response=False)
    def delete_authenticator(self, user_id: str, authenticator_id: str) -> bool:
        return self._conditional(
            self._client.delete_item,
            Key=self._keys.authenticator(user_id),
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

    @tracer.capture_method(capture_response=False)
    def put_attempt(self, attempt: TrackedAttempt, *, seen_device: bool) -> None:
        item: Item = {
            **self._keys.attempt(attempt.attempt_id),
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
                    **self._keys.device(attempt.user_id, attempt.device_key, attempt.action),
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

    @tracer.capture_method(capture_response=False)
    def get_attempt(self, attempt_id: str) -> TrackedAttempt | None:
        item = self._get(self._keys.attempt(attempt_id))
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

    @tracer.capture_method(capture_response=False)
    def is_known_device(self, user_id: str, device_key: str, action: str) -> bool:
        keys = [self._keys.device(user_id, device_key), self._keys.device(user_id, device_key, action)]
        try:
            response = self._client.batch_get_item(
                RequestItems={self._table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "pk"}}
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        if response.get("UnprocessedKeys"):
            raise DependencyError(_UNAVAILABLE)
        return bool(response.get("Responses", {}).get(self._table))

    @tracer.capture_method(capture_response=False)
    def token_used(self, token_id: str) -> bool:
        return self._get(self._keys.used(token_id)) is not None

    @tracer.capture_method(capture_response=False)
    def get_pointer(self, key: str) -> str | None:
        item = self._get(self._keys.pointer(key))
        return item["challengeId"]["S"] if item else None

    @tracer.capture_method(capture_response=False)
    def consume_token(self, token_id: str, expires_at: int, *, challenge_id: str | None = None) -> bool:
        if challenge_id is None:
            return self._conditional(
                self._client.put_item,
                Item=self._keys.used_token_item(token_id, expires_at),
                ConditionExpression="attribute_not_exists(pk)",
            )
        puts = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._keys.used_token_item(used, expires_at),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for used in (token_id, f"chl#{challenge_id}")
        ]
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                return False
            raise DependencyError(_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        return True
