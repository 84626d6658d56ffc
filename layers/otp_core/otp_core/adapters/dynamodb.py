"""DynamoDB implementation of the challenge repository (single table, ``pk``/``sk`` keys, ``ttl`` expiry).

Items:

- ``CHL#<challengeId>`` / ``CHL``: the challenge.
- ``CNT#SEND10#<numberKey>`` / 10-minute bucket, ``CNT#SENDDAY#<numberKey>`` / UTC day,
  ``CNT#IPHOUR#<ipKey>`` / hour: send counters (``n``).
- ``CNT#FAIL#<numberKey>`` / lockout-window bucket: failed verifications (``n``, ``lastFailAt``). A number
  is locked while the current or the previous bucket holds ``threshold`` failures and the last one is
  younger than the lockout. Checking both buckets keeps a lock from ending early at a bucket boundary.

Counter windows are fixed (aligned to the epoch), not sliding. Every change is one ``UpdateItem`` or one
``TransactWriteItems`` whose conditions carry the limits; the values read before a write only choose
which write to make.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import ConflictError, DependencyError, RateLimitedError
from otp_core.ports import (
    Authenticator,
    Challenge,
    ChallengeLink,
    ChallengeRepository,
    ChallengeState,
    SendQuota,
    VerifiedEffects,
    VerifyOutcome,
)
from otp_core.settings import Settings

Item = dict[str, dict[str, Any]]
_TEN_MINUTES = 600
_DAY = 86_400
_HOUR = 3_600
# How long a finished or expired challenge stays readable (GET shows EXPIRED/FAILED) before TTL removes it.
_RETENTION = _DAY
_CONFLICT_RETRIES = 4
# Devices are remembered for a year after they were last seen.
_DEVICE_RETENTION = 365 * _DAY


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def challenge_key(challenge_id: str) -> Item:
    return {"pk": _s(f"CHL#{challenge_id}"), "sk": _s("CHL")}


def to_item(challenge: Challenge, ttl: int) -> Item:
    """Serialise a challenge; optional fields are left out rather than stored as nulls."""
    item: Item = {
        **challenge_key(challenge.challenge_id),
        "challengeId": _s(challenge.challenge_id),
        "phoneNumber": _s(challenge.phone_number),
        "action": _s(challenge.action),
        "codeHash": _s(challenge.code_hash),
        "codeMask": _s(challenge.code_mask),
        "numberKey": _s(challenge.number_key),
        "createdAt": _n(challenge.created_at),
        "expiresAt": _n(challenge.expires_at),
        "maxAttempts": _n(challenge.max_attempts),
        "attempts": _n(challenge.attempts),
        "resends": _n(challenge.resends),
        "nextResendAt": _n(challenge.next_resend_at),
        "state": _s(challenge.state.value),
        "ttl": _n(ttl),
    }
    optional = {
        "userId": challenge.user_id,
        "scope": challenge.scope,
        "ipKey": challenge.ip_key,
        "message": challenge.message,
        "senderId": challenge.sender_id,
        "locale": challenge.locale,
        "claimedBy": challenge.claimed_by,
        "attemptId": challenge.attempt_id,
        "userKey": challenge.user_key,
    }
    item.update({name: _s(value) for name, value in optional.items() if value is not None})
    if challenge.verified_at is not None:
        item["verifiedAt"] = _n(challenge.verified_at)
    return item


def from_item(item: Item) -> Challenge:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def number(name: str) -> int | None:
        return int(item[name]["N"]) if name in item else None

    return Challenge(
        challenge_id=item["challengeId"]["S"],
        phone_number=item["phoneNumber"]["S"],
        action=item["action"]["S"],
        user_id=text("userId"),
        scope=text("scope"),
        code_hash=item["codeHash"]["S"],
        code_mask=item["codeMask"]["S"],
        number_key=item["numberKey"]["S"],
        ip_key=text("ipKey"),
        message=text("message"),
        sender_id=text("senderId"),
        locale=text("locale"),
        created_at=int(item["createdAt"]["N"]),
        expires_at=int(item["expiresAt"]["N"]),
        max_attempts=int(item["maxAttempts"]["N"]),
        attempts=int(item["attempts"]["N"]),
        resends=int(item["resends"]["N"]),
        next_resend_at=int(item["nextResendAt"]["N"]),
        state=ChallengeState(item["state"]["S"]),
        verified_at=number("verifiedAt"),
        claimed_by=text("claimedBy"),
        attempt_id=text("attemptId"),
        user_key=text("userKey"),
    )


def attempt_key(attempt_id: str) -> Item:
    return {"pk": _s(f"TRACK#{attempt_id}"), "sk": _s("TRACK")}


def pointer_key(key: str) -> Item:
    return {"pk": _s(f"PTR#{key}"), "sk": _s("PTR")}


def authenticator_key(user_id: str) -> Item:
    return {"pk": _s(f"USER#{user_id}"), "sk": _s("AUTH#SMS")}


def device_key_of(user_id: str, device_key: str) -> Item:
    return {"pk": _s(f"USER#{user_id}"), "sk": _s(f"DEVICE#{device_key}")}


def authenticator_update(authenticator: Authenticator) -> dict[str, Any]:
    """An upsert of the user's SMS authenticator that keeps its ID and creation time when it replaces one."""
    return {
        "Key": authenticator_key(authenticator.user_id),
        "UpdateExpression": "SET userId = :user, phoneNumber = :phone, verifiedAt = :verified, "
        "authenticatorId = if_not_exists(authenticatorId, :id), createdAt = if_not_exists(createdAt, :created)",
        "ExpressionAttributeValues": {
            ":user": _s(authenticator.user_id),
            ":phone": _s(authenticator.phone_number),
            ":verified": _n(authenticator.verified_at),
            ":id": _s(authenticator.authenticator_id),
            ":created": _n(authenticator.created_at),
        },
    }


def authenticator_from_item(item: Item) -> Authenticator:
    return Authenticator(
        authenticator_id=item["authenticatorId"]["S"],
        user_id=item["userId"]["S"],
        phone_number=item["phoneNumber"]["S"],
        verified_at=int(item["verifiedAt"]["N"]),
        created_at=int(item["createdAt"]["N"]),
    )


@dataclasses.dataclass(frozen=True)
class _Check:
    """One transaction item plus how to explain its condition failing."""

    op: dict[str, Any]
    on_failure: Callable[[Item | None], Exception | None]


class DynamoChallengeRepository(ChallengeRepository):
    """Challenge repository on one DynamoDB table.

    Parameters
    ----------
    client:
        A boto3 DynamoDB client.
    settings:
        Table name and the caps the write conditions enforce.
    sleep:
        Back-off between retries of transactions that lost a conflict (tests pass a no-op).
    """

    def __init__(self, client: Any, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = settings.table_name
        self._settings = settings
        self._sleep = sleep

    # -- reads --------------------------------------------------------------------------------------------

    def get(self, challenge_id: str) -> Challenge | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key=challenge_key(challenge_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        item = response.get("Item")
        return from_item(item) if item else None

    # -- sends --------------------------------------------------------------------------------------------

    def create(self, challenge: Challenge, quota: SendQuota, link: ChallengeLink | None = None) -> None:
        put = _Check(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(challenge, self._challenge_ttl(challenge.expires_at)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            lambda _: ConflictError("challenge ID collision; retry"),
        )
        checks = [*self._lock_checks(quota.number_key, quota.now), *self._send_charges(quota), put]
        if link is not None:
            checks.extend(self._link_ops(challenge, link))
        self._transact(checks)

    def _link_ops(self, challenge: Challenge, link: ChallengeLink) -> list[_Check]:
        ops = []
        if link.attempt_id is not None:
            ops.append(
                _Check(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": attempt_key(link.attempt_id),
                            "UpdateExpression": "SET challengeId = :challenge",
                            "ConditionExpression": "attribute_exists(pk) AND userId = :user",
                            "ExpressionAttributeValues": {
                                ":challenge": _s(challenge.challenge_id),
                                ":user": _s(link.user_id),
                            },
                        }
                    },
                    lambda _: ConflictError("the tracked attempt has expired; track the action again"),
                )
            )
        if link.pointer_key is not None:
            item = {
                **pointer_key(link.pointer_key),
                "challengeId": _s(challenge.challenge_id),
                "ttl": _n(self._challenge_ttl(challenge.expires_at)),
            }
            ops.append(_Check({"Put": {"TableName": self._table, "Item": item}}, lambda _: None))
        return ops

    def record_resend(self, challenge: Challenge, quota: SendQuota, next_resend_at: int) -> Challenge:
        update = _Check(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": challenge_key(challenge.challenge_id),
                    "UpdateExpression": "SET resends = resends + :one, nextResendAt = :next",
                    "ConditionExpression": "#state = :pending AND resends = :resends AND attempts < maxAttempts "
                    "AND expiresAt > :now AND nextResendAt <= :now",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {
                        ":one": _n(1),
                        ":next": _n(next_resend_at),
                        ":pending": _s(ChallengeState.PENDING.value),
                        ":resends": _n(challenge.resends),
                        ":now": _n(quota.now),
                    },
                }
            },
            lambda _: ConflictError("this challenge changed while resending; read it and retry"),
        )
        self._transact([update, *self._lock_checks(quota.number_key, quota.now), *self._send_charges(quota)])
        return dataclasses.replace(challenge, resends=challenge.resends + 1, next_resend_at=next_resend_at)

    def refund_send(self, challenge: Challenge, quota: SendQuota, *, delete: bool) -> None:
        ops: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": key,
                    "UpdateExpression": "ADD n :minus",
                    "ConditionExpression": "n > :zero",
                    "ExpressionAttributeValues": {":minus": _n(-1), ":zero": _n(0)},
                }
            }
            for key, _cap, _retry in self._counters(quota)
        ]
        if delete:
            ops.append({"Delete": {"TableName": self._table, "Key": challenge_key(challenge.challenge_id)}})
        try:
            self._client.transact_write_items(TransactItems=ops)
        except (ClientError, BotoCoreError):
            # The caller reports the delivery failure either way; a lost refund only costs one send of quota.
            from otp_core.observability import logger

            logger.warning("send refund failed", challenge_id=challenge.challenge_id)

    # -- verify -------------------------------------------------------------------------------------------

    def record_failure(self, challenge: Challenge, code_hash: str, now: int) -> VerifyOutcome:
        window = self._settings.lockout_window_seconds
        bucket = now // window
        update = self._attempt_update(
            challenge,
            now,
            "SET attempts = attempts + :one",
            "codeHash <> :candidate",
            {":candidate": _s(code_hash)},
        )
        fail = _Check(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._fail_key(challenge.number_key, bucket),
                    "UpdateExpression": "ADD n :one SET lastFailAt = :now, #ttl = :ttl",
                    "ConditionExpression": "attribute_not_exists(n) OR n < :threshold OR lastFailAt <= :cut",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {
                        ":one": _n(1),
                        ":now": _n(now),
                        ":ttl": _n((bucket + 2) * window + self._settings.lockout_seconds),
                        ":threshold": _n(self._settings.lockout_threshold),
                        ":cut": _n(now - self._settings.lockout_seconds),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            lambda old: self._locked(old, now),
        )
        previous = self._lock_check(challenge.number_key, bucket - 1, now)
        return self._attempt([update, fail, previous], challenge, VerifyOutcome.WRONG)

    def mark_verified(
        self, challenge: Challenge, code_hash: str, now: int, effects: VerifiedEffects | None = None
    ) -> VerifyOutcome:
        claimable_until = now + self._settings.token_ttl_seconds
        update = self._attempt_update(
            challenge,
            now,
            "SET attempts = attempts + :one, #state = :verified, verifiedAt = :now, "
            "claimableUntil = :claimable, #ttl = :ttl",
            "codeHash = :candidate",
            {
                ":candidate": _s(code_hash),
                ":verified": _s(ChallengeState.VERIFIED.value),
                ":claimable": _n(claimable_until),
                ":ttl": _n(max(self._challenge_ttl(challenge.expires_at), claimable_until + _RETENTION)),
            },
        )
        checks = [update, *self._lock_checks(challenge.number_key, now)]
        if effects is not None:
            checks.extend(self._effect_ops(effects, now))
        return self._attempt(checks, challenge, VerifyOutcome.VERIFIED)

    def _effect_ops(self, effects: VerifiedEffects, now: int) -> list[_Check]:
        checks: list[_Check] = []
        if effects.enroll is not None:
            update = {"TableName": self._table, **authenticator_update(effects.enroll)}
            if effects.enroll_only_if_new:
                update["ConditionExpression"] = "attribute_not_exists(pk)"
            # The user enrolled a number meanwhile: an "add" may not replace it, so the code no longer counts.
            checks.append(_Check({"Update": update}, lambda _: _AttemptLostError(None)))
        ops: list[dict[str, Any]] = []
        if effects.attempt_id is not None:
            ops.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": attempt_key(effects.attempt_id),
                        "UpdateExpression": "SET #state = :succeeded",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {":succeeded": _s("CHALLENGE_SUCCEEDED")},
                    }
                }
            )
        if effects.seen_device is not None:
            user_id, device = effects.seen_device
            item = {**device_key_of(user_id, device), "seenAt": _n(now), "ttl": _n(now + _DEVICE_RETENTION)}
            ops.append({"Put": {"TableName": self._table, "Item": item}})
        # A failed attempt condition means the tracked attempt expired: the verification does not count.
        return checks + [_Check(op, lambda _: _AttemptLostError(None)) for op in ops]

    def _attempt_update(
        self, challenge: Challenge, now: int, expression: str, extra_condition: str, values: Item
    ) -> _Check:
        return _Check(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": challenge_key(challenge.challenge_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "#state = :pending AND attempts < maxAttempts AND expiresAt > :now AND "
                    + extra_condition,
                    "ExpressionAttributeNames": {"#state": "state", "#ttl": "ttl"}
                    if "#ttl" in expression
                    else {"#state": "state"},
                    "ExpressionAttributeValues": {
                        ":pending": _s(ChallengeState.PENDING.value),
                        ":now": _n(now),
                        ":one": _n(1),
                        **values,
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            lambda old: _AttemptLostError(old),
        )

    def _attempt(self, checks: Sequence[_Check], challenge: Challenge, success: VerifyOutcome) -> VerifyOutcome:
        try:
            self._transact(checks)
        except _AttemptLostError as lost:
            old = lost.item
            if old is None:
                current = self.get(challenge.challenge_id)
            else:
                current = from_item(old) if "challengeId" in old else None
            exhausted = (
                current is not None
                and current.state is ChallengeState.PENDING
                and (current.attempts >= current.max_attempts)
            )
            return VerifyOutcome.EXHAUSTED if exhausted else VerifyOutcome.INVALID
        return success

    # -- claim --------------------------------------------------------------------------------------------

    def claim(self, challenge_id: str, user_id: str, now: int) -> Challenge:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=challenge_key(challenge_id),
                UpdateExpression="SET #state = :claimed, claimedBy = :user, claimedAt = if_not_exists(claimedAt, :now)",
                ConditionExpression="(#state = :verified AND claimableUntil > :now "
                "AND (attribute_not_exists(userId) OR userId = :user)) OR (#state = :claimed AND claimedBy = :user)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":claimed": _s(ChallengeState.CLAIMED.value),
                    ":verified": _s(ChallengeState.VERIFIED.value),
                    ":user": _s(user_id),
                    ":now": _n(now),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConflictError("this challenge is not verified or is already claimed") from exc
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        except BotoCoreError as exc:
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        return from_item(response["Attributes"])

    # -- building blocks ----------------------------------------------------------------------------------

    def _challenge_ttl(self, expires_at: int) -> int:
        return expires_at + self._settings.token_ttl_seconds + _RETENTION

    @staticmethod
    def _fail_key(number_key: str, bucket: int) -> Item:
        return {"pk": _s(f"CNT#FAIL#{number_key}"), "sk": _s(str(bucket))}

    def _locked(self, old: Item | None, now: int) -> RateLimitedError:
        lockout = self._settings.lockout_seconds
        last = int(old["lastFailAt"]["N"]) if old and "lastFailAt" in old else now
        return RateLimitedError(
            "too many failed verifications for this number; try again later", retry_after=last + lockout - now
        )

    def _lock_check(self, number_key: str, bucket: int, now: int) -> _Check:
        return _Check(
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": self._fail_key(number_key, bucket),
                    "ConditionExpression": "attribute_not_exists(n) OR n < :threshold OR lastFailAt <= :cut",
                    "ExpressionAttributeValues": {
                        ":threshold": _n(self._settings.lockout_threshold),
                        ":cut": _n(now - self._settings.lockout_seconds),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            lambda old: self._locked(old, now),
        )

    def _lock_checks(self, number_key: str, now: int) -> list[_Check]:
        bucket = now // self._settings.lockout_window_seconds
        return [self._lock_check(number_key, bucket, now), self._lock_check(number_key, bucket - 1, now)]

    def _counters(self, quota: SendQuota) -> list[tuple[Item, int, int]]:
        """(key, cap, seconds until the window ends) of each counter a send is charged to."""
        now, settings = quota.now, self._settings
        counters = [
            ("SEND10", quota.number_key, _TEN_MINUTES, settings.max_sends_per_10_minutes),
            ("SENDDAY", quota.number_key, _DAY, settings.max_sends_per_day),
        ]
        if quota.ip_key is not None:
            counters.append(("IPHOUR", quota.ip_key, _HOUR, settings.max_sends_per_ip_per_hour))
        if quota.user_key is not None:
            # An end user may not spread sends over many numbers: the daily cap holds per user as well.
            counters.append(("USERDAY", quota.user_key, _DAY, settings.max_sends_per_day))
        return [
            (
                {"pk": _s(f"CNT#{kind}#{subject}"), "sk": _s(str(now // window))},
                cap,
                (now // window + 1) * window - now,
            )
            for kind, subject, window, cap in counters
        ]

    def _send_charges(self, quota: SendQuota) -> list[_Check]:
        charges = []
        for key, cap, retry_after in self._counters(quota):
            charges.append(
                _Check(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": key,
                            "UpdateExpression": "ADD n :one SET #ttl = :ttl",
                            "ConditionExpression": "attribute_not_exists(n) OR n < :cap",
                            "ExpressionAttributeNames": {"#ttl": "ttl"},
                            "ExpressionAttributeValues": {
                                ":one": _n(1),
                                ":cap": _n(cap),
                                ":ttl": _n(quota.now + retry_after + _HOUR),
                            },
                        }
                    },
                    _send_limited(retry_after),
                )
            )
        return charges

    def _transact(self, checks: Sequence[_Check]) -> None:
        """Run one transaction; map a failed condition to its error, retry lost conflicts briefly."""
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                self._client.transact_write_items(TransactItems=[check.op for check in checks])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise DependencyError("the challenge store is unavailable; retry later") from exc
                reasons = exc.response.get("CancellationReasons") or []
                for check, reason in zip(checks, reasons, strict=False):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        error = check.on_failure(reason.get("Item"))
                        if error is not None:
                            raise error from None
                if attempt == _CONFLICT_RETRIES:
                    raise RateLimitedError(
                        "too many concurrent requests for this challenge or number", retry_after=1
                    ) from exc
                self._sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not a secret
            except BotoCoreError as exc:
                raise DependencyError("the challenge store is unavailable; retry later") from exc
            else:
                return


def _send_limited(retry_after: int) -> Callable[[Item | None], Exception]:
    def explain(_: Item | None) -> Exception:
        return RateLimitedError(
            "too many codes sent to this number or from this address; try again later", retry_after=retry_after
        )

    return explain


class _AttemptLostError(Exception):
    """The challenge's condition failed: another request changed it, or it is finished or expired."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("attempt lost")
        self.item = item
