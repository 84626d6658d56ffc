"""DynamoDB implementation of the challenge repository (single table, ``pk``/``sk`` keys, ``ttl`` expiry).

Items:

- ``CHL#<challengeId>`` / ``CHL``: the challenge.
- ``CNT#<kind>#<subject>`` / window index: sliding-window counters (``n``) of sends (``SEND10``, ``SENDDAY``,
  ``OWNER10``, ``OWNERDAY`` per number key, ``IPHOUR`` per address key, ``USERDAY`` per end user) and of failed
  verifications (``FAIL``, ``OWNERFAIL`` per number key); see :mod:`otp_core.policy`.
- ``CNT#LOCK#<numberKey>`` and ``CNT#OWNERLOCK#<numberKey>`` / ``LOCK``: a lockout in force until ``until``.

A sliding window needs the previous window's count, which no longer grows: it is read (one BatchGetItem)
before the write, and the write carries it as a condition (``n <= seen``), so a count that moved under the
read makes the write fail and be retried with a fresh read. Every change is then one ``TransactWriteItems``
whose conditions carry the limits: the cap on the current window, the lock, the challenge's state.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.errors import (
    ConflictError,
    DependencyError,
    DestinationBlockedError,
    RateLimitedError,
    SendBudgetExceededError,
)
from otp_core.observability import logger, tracer
from otp_core.policy import (
    Counter,
    FailureRule,
    SendCharge,
    SendReceipt,
    locks_after_failure,
    sliding_allowance,
    sliding_retry_after,
)
from otp_core.ports import ChallengeRepository
from otp_core.records import (
    DEFAULT_APP,
    Authenticator,
    Challenge,
    ChallengeLink,
    ChallengeState,
    Delivery,
    VerifiedEffects,
    VerifyOutcome,
)

if TYPE_CHECKING:
    from otp_core.fraud import Activity, Bucket, FraudCharge

Item = dict[str, dict[str, Any]]
_DAY = 86_400
_HOUR = 3_600
# How long a finished or expired challenge stays readable (GET shows EXPIRED/FAILED) before TTL removes it,
# counted from the end of the longest claim window a token lifetime allows.
_RETENTION = _DAY
_LONGEST_CLAIM = _HOUR
_CONFLICT_RETRIES = 4
# Devices are remembered for a year after they were last seen.
_DEVICE_RETENTION = 365 * _DAY


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def challenge_key(challenge_id: str) -> Item:
    return {"pk": _s(f"CHL#{challenge_id}"), "sk": _s("CHL")}


def to_item(challenge: Challenge, ttl: int, app_id: str = DEFAULT_APP) -> Item:
    """Serialise a challenge of ``app_id``; optional fields are left out rather than stored as nulls."""
    item: Item = {
        **challenge_key(challenge.challenge_id),
        "app": _s(app_id),
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
        "replaces": challenge.replaces,
        "enrolledAs": challenge.enrolled_as,
        "proofId": challenge.proof_id,
        "region": challenge.region,
        "fraudApp": challenge.fraud_app,
    }
    item.update({name: _s(value) for name, value in optional.items() if value is not None})
    if challenge.verified_at is not None:
        item["verifiedAt"] = _n(challenge.verified_at)
    if challenge.proof_expires_at is not None:
        item["proofExpiresAt"] = _n(challenge.proof_expires_at)
    if challenge.test:
        item["test"] = {"BOOL": True}
    return item


def _delivery(value: Any) -> Delivery | None:
    """The ``delivery`` map of a challenge item (see otp_core.sms.delivery), None when there is none."""
    fields = value.get("M") if isinstance(value, dict) else None
    if not isinstance(fields, dict) or "status" not in fields:
        return None

    def text(name: str) -> str | None:
        return fields[name]["S"] if name in fields else None

    send = fields.get("send")
    return Delivery(
        status=fields["status"]["S"],
        provider=text("provider"),
        message_id=text("messageId"),
        send=int(send["N"]) if send is not None else None,
    )


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
        claimable_until=number("claimableUntil"),
        replaces=text("replaces"),
        enrolled_as=text("enrolledAs"),
        proof_id=text("proofId"),
        proof_expires_at=number("proofExpiresAt"),
        region=text("region"),
        fraud_app=text("fraudApp"),
        delivery=_delivery(item.get("delivery")),
        test=bool(item.get("test", {}).get("BOOL", False)),
    )


@dataclasses.dataclass(frozen=True)
class Keys:
    """The table keys of one app's items: every item but a challenge is keyed by its app.

    The app ``default`` keeps the keys of a single-app stack (``USER#...``, ``CNT#...``), so a stack upgraded
    to several apps keeps its data; every other app's keys start with ``APP#<appId>#``, which no key of
    ``default`` does. A challenge (``CHL#<challengeId>``, a random UUID) stays unprefixed so a provider's
    delivery callback, which names only the challenge, finds it; it records its app (``app``), and every read
    and write of the repository compares it, so another app's challenge ID behaves as an unknown one.
    """

    app_id: str = DEFAULT_APP

    @property
    def prefix(self) -> str:
        return "" if self.app_id == DEFAULT_APP else f"APP#{self.app_id}#"

    def attempt(self, attempt_id: str) -> Item:
        return {"pk": _s(f"{self.prefix}TRACK#{attempt_id}"), "sk": _s("TRACK")}

    def pointer(self, key: str) -> Item:
        return {"pk": _s(f"{self.prefix}PTR#{key}"), "sk": _s("PTR")}

    def authenticator(self, user_id: str) -> Item:
        return {"pk": _s(f"{self.prefix}USER#{user_id}"), "sk": _s("AUTH#SMS")}

    def device(self, user_id: str, device_key: str, action: str | None = None) -> Item:
        """A device known for every action (it completed a challenge), or only for ``action`` (it was allowed in)."""
        suffix = f"#ACT#{action}" if action is not None else ""
        return {"pk": _s(f"{self.prefix}USER#{user_id}"), "sk": _s(f"DEVICE#{device_key}{suffix}")}

    def counter(self, counter: Counter, bucket: int) -> Item:
        return {"pk": _s(f"{self.prefix}CNT#{counter.kind}#{counter.subject}"), "sk": _s(str(bucket))}

    def lock(self, subject: str) -> Item:
        return {"pk": _s(f"{self.prefix}CNT#{subject}"), "sk": _s("LOCK")}

    def used(self, token_id: str) -> Item:
        return {"pk": _s(f"{self.prefix}USED#{token_id}"), "sk": _s("USED")}

    def used_token_item(self, token_id: str, expires_at: int) -> Item:
        return {**self.used(token_id), "ttl": _n(expires_at + _HOUR)}

    def authenticator_item(self, authenticator: Authenticator) -> Item:
        """The whole authenticator item: a replacement is a new authenticator, never an edit of the old one."""
        return {
            **self.authenticator(authenticator.user_id),
            "authenticatorId": _s(authenticator.authenticator_id),
            "userId": _s(authenticator.user_id),
            "phoneNumber": _s(authenticator.phone_number),
            "verifiedAt": _n(authenticator.verified_at),
            "createdAt": _n(authenticator.created_at),
        }


def app_of_item(item: Item) -> str:
    """The app a stored challenge belongs to (challenges stored before apps existed are ``default``'s)."""
    return str(item.get("app", {}).get("S", DEFAULT_APP))


def replace_condition(replaces: str | None) -> dict[str, Any]:
    """The condition that the user's authenticator is still the one a replacement was decided against."""
    if replaces is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "authenticatorId = :expected",
        "ExpressionAttributeValues": {":expected": _s(replaces)},
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


def _ref(key: Item) -> tuple[str, str]:
    return key["pk"]["S"], key["sk"]["S"]


class _StaleReadError(Exception):
    """A counter moved between its read and the write that relied on it: read again and retry."""


class DynamoChallengeRepository(ChallengeRepository):
    """Challenge repository on one DynamoDB table.

    Parameters
    ----------
    client:
        A boto3 DynamoDB client.
    table:
        The table name.
    sleep:
        Back-off between retries of transactions that lost a conflict (tests pass a no-op).
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        app_id: str = DEFAULT_APP,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self._app = app_id
        self._keys = Keys(app_id)
        self._sleep = sleep

    def _mine(self, item: Item | None) -> Item | None:
        """The challenge item if it is this app's (another app's challenge is as good as absent)."""
        return item if item is not None and app_of_item(item) == self._app else None

    def _app_condition(self) -> tuple[str, dict[str, dict[str, str]]]:
        """The condition (and its value) that a challenge item is this app's."""
        if self._app == DEFAULT_APP:
            return "(attribute_not_exists(#app) OR #app = :app)", {":app": _s(self._app)}
        return "#app = :app", {":app": _s(self._app)}

    # -- reads --------------------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def get(self, challenge_id: str) -> Challenge | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key=challenge_key(challenge_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        item = self._mine(response.get("Item"))
        return from_item(item) if item else None

    def _read(self, keys: Sequence[Item]) -> dict[tuple[str, str], Item]:
        """Counter, activity and budget items (absent ones are left out), in strongly consistent BatchGetItems
        of at most 100 keys each (one for every send of the defaults)."""
        items: dict[tuple[str, str], Item] = {}
        unique = list({_ref(key): key for key in keys}.values())
        for start in range(0, len(unique), 100):
            pending: list[Item] = unique[start : start + 100]
            for attempt in range(_CONFLICT_RETRIES + 1):
                if not pending:
                    break
                try:
                    response = self._client.batch_get_item(
                        RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}}
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise DependencyError("the challenge store is unavailable; retry later") from exc
                for item in response.get("Responses", {}).get(self._table, []):
                    items[_ref(item)] = item
                pending = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if pending and attempt < _CONFLICT_RETRIES:
                    self._sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not a secret
            if pending:
                raise DependencyError("the challenge store is unavailable; retry later")
        return items

    # -- sends --------------------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def create(self, challenge: Challenge, charge: SendCharge, link: ChallengeLink | None = None) -> SendReceipt:
        put = _Check(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(challenge, self._challenge_ttl(challenge.expires_at), self._app),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            lambda _: ConflictError("challenge ID collision; retry"),
        )
        tail = [put, *(self._link_ops(challenge, link, charge.now) if link is not None else [])]
        receipt = [SendReceipt()]

        def build(items: dict[tuple[str, str], Item]) -> list[_Check]:
            checks = [*self._lock_checks(charge.locks, charge.now), *self._charges(charge, items)]
            guards, receipt[0] = self._guards(charge, items)
            return [*checks, *guards, *tail]

        self._with_fresh_counts(build, self._charge_keys(charge))
        return receipt[0]

    def _link_ops(self, challenge: Challenge, link: ChallengeLink, now: int) -> list[_Check]:
        ops = []
        if link.attempt_id is not None:
            ops.append(
                _Check(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._keys.attempt(link.attempt_id),
                            "UpdateExpression": "SET challengeId = :challenge",
                            "ConditionExpression": "attribute_exists(pk) AND userId = :user AND expiresAt > :now",
                            "ExpressionAttributeValues": {
                                ":challenge": _s(challenge.challenge_id),
                                # A tracked attempt is always an end user's (ClientFlows names them).
                                ":user": _s(link.user_id or ""),
                                ":now": _n(now),
                            },
                        }
                    },
                    lambda _: ConflictError("the tracked attempt has expired; track the action again"),
                )
            )
        if link.pointer_key is not None:
            item = {
                **self._keys.pointer(link.pointer_key),
                "challengeId": _s(challenge.challenge_id),
                "ttl": _n(self._challenge_ttl(challenge.expires_at)),
            }
            ops.append(_Check({"Put": {"TableName": self._table, "Item": item}}, lambda _: None))
        return ops

    @tracer.capture_method(capture_response=False)
    def record_resend(
        self, challenge: Challenge, charge: SendCharge, next_resend_at: int
    ) -> tuple[Challenge, SendReceipt]:
        mine, app_value = self._app_condition()
        update = _Check(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": challenge_key(challenge.challenge_id),
                    "UpdateExpression": "SET resends = resends + :one, nextResendAt = :next",
                    "ConditionExpression": "#state = :pending AND resends = :resends AND attempts < maxAttempts "
                    f"AND expiresAt > :now AND nextResendAt <= :now AND {mine}",
                    "ExpressionAttributeNames": {"#state": "state", "#app": "app"},
                    "ExpressionAttributeValues": {
                        **app_value,
                        ":one": _n(1),
                        ":next": _n(next_resend_at),
                        ":pending": _s(ChallengeState.PENDING.value),
                        ":resends": _n(challenge.resends),
                        ":now": _n(charge.now),
                    },
                }
            },
            lambda _: ConflictError("this challenge changed while resending; read it and retry"),
        )
        receipt = [SendReceipt()]

        def build(items: dict[tuple[str, str], Item]) -> list[_Check]:
            checks = [update, *self._lock_checks(charge.locks, charge.now), *self._charges(charge, items)]
            guards, receipt[0] = self._guards(charge, items)
            return [*checks, *guards]

        self._with_fresh_counts(build, self._charge_keys(charge))
        resent = dataclasses.replace(challenge, resends=challenge.resends + 1, next_resend_at=next_resend_at)
        return resent, receipt[0]

    @tracer.capture_method(capture_response=False)
    def refund_send(
        self, challenge: Challenge, charge: SendCharge, *, delete: bool, receipt: SendReceipt | None = None
    ) -> None:
        ops: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._keys.counter(counter, counter.bucket(charge.now)),
                    "UpdateExpression": "ADD n :minus",
                    "ConditionExpression": "n > :zero",
                    "ExpressionAttributeValues": {":minus": _n(-1), ":zero": _n(0)},
                }
            }
            for counter in charge.counters
        ]
        if receipt is not None:
            # A refused send (4xx) counts toward no bucket or budget either.
            ops += self._guard_refunds(charge, receipt)
        mine, app_value = self._app_condition()
        only_mine = {
            "ConditionExpression": mine,
            "ExpressionAttributeNames": {"#app": "app"},
            "ExpressionAttributeValues": app_value,
        }
        if delete:
            ops.append(
                {"Delete": {"TableName": self._table, "Key": challenge_key(challenge.challenge_id), **only_mine}}
            )
        try:
            self._client.transact_write_items(TransactItems=ops)
        except (ClientError, BotoCoreError):
            # The caller reports the delivery failure either way; a lost refund only costs one send of quota
            # (a count reset meanwhile fails its condition). The rolled-back challenge still goes.
            logger.warning("send refund failed", challenge_id=challenge.challenge_id)
            if delete:
                try:
                    self._client.delete_item(
                        TableName=self._table, Key=challenge_key(challenge.challenge_id), **only_mine
                    )
                except (ClientError, BotoCoreError):
                    logger.warning("rolled-back challenge not deleted", challenge_id=challenge.challenge_id)

    # -- verify -------------------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def record_failure(
        self, challenge: Challenge, code_hash: str, now: int, rule: FailureRule, *, cutoff: int | None = None
    ) -> VerifyOutcome:
        counter = rule.counter
        bucket = counter.bucket(now)
        update = self._attempt_update(
            challenge,
            now,
            now if cutoff is None else cutoff,
            "SET attempts = attempts + :one",
            "codeHash <> :candidate",
            {":candidate": _s(code_hash)},
        )

        def build(items: dict[tuple[str, str], Item]) -> list[_Check]:
            current = _count(items, self._keys.counter(counter, bucket))
            previous = _count(items, self._keys.counter(counter, bucket - 1))
            # The exact count is a condition, so whether this failure reaches the threshold is known and the
            # lock is set in the same write as the failure that earns it.
            exact = "n = :seen" if current else "attribute_not_exists(n) OR n = :seen"
            fail = _Check(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": self._keys.counter(counter, bucket),
                        "UpdateExpression": "ADD n :one SET lastFailAt = :now, #ttl = :ttl",
                        "ConditionExpression": exact,
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {
                            ":one": _n(1),
                            ":now": _n(now),
                            ":seen": _n(current),
                            ":ttl": _n((bucket + 2) * counter.window + _HOUR),
                        },
                    }
                },
                lambda _: _StaleReadError(),
            )
            checks = [update, fail, self._unchanged(self._keys.counter(counter, bucket - 1), previous)]
            if locks_after_failure(previous, current, now, rule):
                checks.append(self._lock_update(rule.own_lock, now, now + rule.lockout_seconds))
                checks.extend(self._lock_check(subject, now) for subject in rule.locks if subject != rule.own_lock)
            else:
                checks.extend(self._lock_checks(rule.locks, now))
            return checks

        keys = [self._keys.counter(counter, bucket), self._keys.counter(counter, bucket - 1)]
        try:
            self._with_fresh_counts(build, keys)
        except _AttemptLostError as lost:
            return self._lost(lost, challenge)
        return VerifyOutcome.WRONG

    @tracer.capture_method(capture_response=False)
    def mark_verified(
        self,
        challenge: Challenge,
        code_hash: str,
        now: int,
        *,
        locks: tuple[str, ...],
        claimable_until: int,
        effects: VerifiedEffects | None = None,
        cutoff: int | None = None,
    ) -> VerifyOutcome:
        update = self._attempt_update(
            challenge,
            now,
            now if cutoff is None else cutoff,
            "SET attempts = attempts + :one, #state = :verified, verifiedAt = :now, "
            "claimableUntil = :claimable, #ttl = :ttl",
            "codeHash = :candidate",
            {
                ":now": _n(now),
                ":candidate": _s(code_hash),
                ":verified": _s(ChallengeState.VERIFIED.value),
                ":claimable": _n(claimable_until),
                ":ttl": _n(max(self._challenge_ttl(challenge.expires_at), claimable_until + _RETENTION)),
            },
        )
        checks = [update, *self._lock_checks(locks, now), *self._verified_ops(challenge, now)]
        if effects is not None:
            checks.extend(self._effect_ops(effects, now))
        try:
            self._transact(checks)
        except _EnrollConflictError:
            return VerifyOutcome.ENROLL_CONFLICT
        except _AttemptLostError as lost:
            return self._lost(lost, challenge)
        return VerifyOutcome.VERIFIED

    def _effect_ops(self, effects: VerifiedEffects, now: int) -> list[_Check]:
        checks: list[_Check] = []
        if effects.enroll is not None:
            put = {
                "TableName": self._table,
                "Item": self._keys.authenticator_item(effects.enroll),
                **replace_condition(effects.replaces),
            }
            checks.append(_Check({"Put": put}, lambda _: _EnrollConflictError()))
        ops: list[dict[str, Any]] = []
        if effects.still_enrolled is not None:
            user_id, authenticator_id = effects.still_enrolled
            ops.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": self._keys.authenticator(user_id),
                        "ConditionExpression": "authenticatorId = :id",
                        "ExpressionAttributeValues": {":id": _s(authenticator_id)},
                    }
                }
            )
        if effects.consume_proof is not None:
            proof_id, proof_expires_at = effects.consume_proof
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._keys.used_token_item(proof_id, proof_expires_at),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        if effects.attempt_id is not None:
            ops.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": self._keys.attempt(effects.attempt_id),
                        "UpdateExpression": "SET #state = :succeeded",
                        "ConditionExpression": "attribute_exists(pk) AND expiresAt > :now",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {":succeeded": _s("CHALLENGE_SUCCEEDED"), ":now": _n(now)},
                    }
                }
            )
        if effects.seen_device is not None:
            user_id, device = effects.seen_device
            item = {**self._keys.device(user_id, device), "seenAt": _n(now), "ttl": _n(now + _DEVICE_RETENTION)}
            ops.append({"Put": {"TableName": self._table, "Item": item}})
        # A replaced number, a spent proof or an expired tracked attempt: the verification does not count.
        return checks + [_Check(op, lambda _: _AttemptLostError(None)) for op in ops]

    def _attempt_update(
        self, challenge: Challenge, now: int, cutoff: int, expression: str, extra_condition: str, values: Item
    ) -> _Check:
        mine, app_value = self._app_condition()
        names = {"#state": "state", "#app": "app"}
        if "#ttl" in expression:
            names["#ttl"] = "ttl"
        return _Check(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": challenge_key(challenge.challenge_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "#state = :pending AND attempts < maxAttempts AND expiresAt > :cutoff AND "
                    f"{mine} AND {extra_condition}",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        **app_value,
                        ":pending": _s(ChallengeState.PENDING.value),
                        ":cutoff": _n(cutoff),
                        ":one": _n(1),
                        **values,
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            lambda old: _AttemptLostError(old),
        )

    def _lost(self, lost: _AttemptLostError, challenge: Challenge) -> VerifyOutcome:
        old = lost.item
        # Without the old item (a linked record failed), read the challenge to tell exhausted from gone.
        mine = self._mine(old)
        current = (
            self.get(challenge.challenge_id)
            if old is None
            else (from_item(mine) if mine and "challengeId" in mine else None)
        )
        exhausted = (
            current is not None
            and current.state is ChallengeState.PENDING
            and (current.attempts >= current.max_attempts)
        )
        return VerifyOutcome.EXHAUSTED if exhausted else VerifyOutcome.INVALID

    # -- cancel -------------------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def cancel(self, challenge_id: str, now: int) -> Challenge | None:
        mine, app_value = self._app_condition()
        item = self._update_if(
            Key=challenge_key(challenge_id),
            UpdateExpression="SET #state = :expired, expiresAt = :now, canceledAt = :now",
            ConditionExpression=f"{mine} AND #state = :pending AND attempts < maxAttempts AND expiresAt > :now",
            ExpressionAttributeNames={"#state": "state", "#app": "app"},
            ExpressionAttributeValues={
                **app_value,
                ":expired": _s(ChallengeState.EXPIRED.value),
                ":pending": _s(ChallengeState.PENDING.value),
                ":now": _n(now),
            },
        )
        return None if item is None else from_item(item)

    # -- claim --------------------------------------------------------------------------------------------

    @tracer.capture_method(capture_response=False)
    def claim(self, challenge_id: str, user_id: str, now: int, *, again: bool = True) -> Challenge:
        mine, app_value = self._app_condition()
        # DynamoDB refuses redundant parentheses: the verified branch is bracketed only beside the repeat branch.
        claimable = "#state = :verified AND claimableUntil > :now AND (attribute_not_exists(userId) OR userId = :user)"
        if again:
            claimable = f"({claimable}) OR (#state = :claimed AND claimedBy = :user)"
        item = self._update_if(
            Key=challenge_key(challenge_id),
            UpdateExpression="SET #state = :claimed, claimedBy = :user, claimedAt = if_not_exists(claimedAt, :now)",
            ConditionExpression=f"{mine} AND ({claimable})",
            ExpressionAttributeNames={"#state": "state", "#app": "app"},
            ExpressionAttributeValues={
                **app_value,
                ":claimed": _s(ChallengeState.CLAIMED.value),
                ":verified": _s(ChallengeState.VERIFIED.value),
                ":user": _s(user_id),
                ":now": _n(now),
            },
        )
        if item is None:
            raise ConflictError("this challenge is not verified or is already claimed")
        return from_item(item)

    def _update_if(self, **request: Any) -> Item | None:
        """One conditional ``UpdateItem`` of the table: the item as written, or None when its condition failed."""
        try:
            response = self._client.update_item(TableName=self._table, ReturnValues="ALL_NEW", **request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        except BotoCoreError as exc:
            raise DependencyError("the challenge store is unavailable; retry later") from exc
        attributes: Item = response["Attributes"]
        return attributes

    # -- building blocks ----------------------------------------------------------------------------------

    @staticmethod
    def _challenge_ttl(expires_at: int) -> int:
        return expires_at + _LONGEST_CLAIM + _RETENTION

    def _lock_check(self, subject: str, now: int) -> _Check:
        return _Check(
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": self._keys.lock(subject),
                    "ConditionExpression": "attribute_not_exists(#until) OR #until <= :now",
                    "ExpressionAttributeNames": {"#until": "until"},
                    "ExpressionAttributeValues": {":now": _n(now)},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            lambda old: _locked(old, now),
        )

    def _lock_update(self, subject: str, now: int, until: int) -> _Check:
        return _Check(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": self._keys.lock(subject),
                    "UpdateExpression": "SET #until = :until, #ttl = :ttl",
                    "ConditionExpression": "attribute_not_exists(#until) OR #until <= :now",
                    "ExpressionAttributeNames": {"#until": "until", "#ttl": "ttl"},
                    "ExpressionAttributeValues": {":now": _n(now), ":until": _n(until), ":ttl": _n(until + _HOUR)},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            lambda old: _locked(old, now),
        )

    def _lock_checks(self, locks: Sequence[str], now: int) -> list[_Check]:
        return [self._lock_check(subject, now) for subject in locks]

    def _unchanged(self, key: Item, seen: int) -> _Check:
        """The previous window's count is still what the allowance was computed from."""
        return _Check(
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "attribute_not_exists(n) OR n <= :seen",
                    "ExpressionAttributeValues": {":seen": _n(seen)},
                }
            },
            lambda _: _StaleReadError(),
        )

    def _charge_keys(self, charge: SendCharge) -> list[Item]:
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core.adapters import fraud_items as fi

        keys = [self._keys.lock(subject) for subject in charge.locks]
        for counter in charge.counters:
            bucket = counter.bucket(charge.now)
            keys.extend([self._keys.counter(counter, bucket), self._keys.counter(counter, bucket - 1)])
        fraud = charge.fraud
        if fraud is not None and (fraud.count or fraud.judge) and fraud.refused_by is None:
            for destination in fraud.buckets:
                keys.extend(fi.activity_keys(fraud.app_id, destination, charge.now))
        keys.extend(fi.budget_keys([c.budget for c in charge.budgets], charge.now))
        return keys

    # -- fraud guard and spend guard ----------------------------------------------------------------------

    def _guards(self, charge: SendCharge, items: dict[tuple[str, str], Item]) -> tuple[list[_Check], SendReceipt]:
        """The fraud guard's counts and the budgets' charges of one send, after the caller's own caps.

        Raises DestinationBlockedError for a block in force or a trip (``block`` mode), and
        SendBudgetExceededError when no shard of a budget has room for the send's parts.
        """
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core import fraud as fr
        from otp_core import spend as sp
        from otp_core.adapters import fraud_items as fi

        now, checks, suspected, counted = charge.now, [], [], []
        fraud = charge.fraud
        if fraud is not None:
            if fraud.refused_by is not None:
                raise DestinationBlockedError(fraud.refused_by.bucket.level)
            rule = fr.judge_resend if fraud.resend else fr.judge
            for destination in fraud.buckets:
                seen = fi.activity(fraud.app_id, destination, now, items)
                if destination.name in fraud.since:
                    seen = seen.after(fraud.since[destination.name])
                if fraud.judge:
                    trip = rule(destination, seen, now, fraud.rules)
                    if trip is not None and fraud.rules.mode is fr.Mode.BLOCK:
                        raise DestinationBlockedError(destination.level, trip=trip)
                    if trip is not None:
                        suspected.append(trip)
                if fraud.count:
                    ops, counted_in = self._count_created(fraud, destination, now, items, seen)
                    checks += ops
                    counted.append((destination.name, counted_in))
                elif fraud.resend:
                    checks.append(self._count_resent(fraud, destination, now))
        shards, used = [], 0
        for budget_charge in charge.budgets:
            budget, parts = budget_charge.budget, budget_charge.parts
            spent = [_count(items, fi.budget_key(budget, shard, now)) for shard in range(budget.shards)]
            shard = sp.pick_shard(spent, budget, parts, enrolled=budget_charge.enrolled, start=budget_charge.start)
            if shard is None:
                raise SendBudgetExceededError(
                    "the SMS budget for this period is spent; try again later", retry_after=budget.retry_after(now)
                )
            room = sp.share_of(budget, shard, enrolled=budget_charge.enrolled) - parts
            checks.append(
                _Check(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": fi.budget_key(budget, shard, now),
                            "UpdateExpression": "ADD n :parts SET #ttl = :ttl",
                            "ConditionExpression": "attribute_not_exists(n) OR n <= :room",
                            "ExpressionAttributeNames": {"#ttl": "ttl"},
                            "ExpressionAttributeValues": {
                                ":parts": _n(parts),
                                ":room": _n(room),
                                ":ttl": _n((budget.bucket(now) + 1) * budget.window + _HOUR),
                            },
                        }
                    },
                    lambda _: _StaleReadError(),
                )
            )
            shards.append((budget, shard, parts))
            used = max(used, (sum(spent) + parts) * 100 // budget.cap)
        return checks, SendReceipt(tuple(shards), tuple(suspected), used, tuple(counted))

    def _count_created(
        self,
        fraud: FraudCharge,
        destination: Bucket,
        now: int,
        items: dict[tuple[str, str], Item],
        seen: Activity,
    ) -> tuple[list[_Check], int]:
        """One more challenge in the bucket's current minute and hour, and the shard it was counted in.

        Judged in ``block`` mode, the velocity caps are conditions of the write, so concurrent sends cannot
        pass them: a thousand-number block's hour total as read (one item), and for a country with no
        verification in the last hour, the shard's share of the country's cap (each of its shards admits its
        share, so all of them together admit the cap, and a send goes to a shard with room).
        """
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core import fraud as fr
        from otp_core import spend as sp
        from otp_core.adapters import fraud_items as fi

        hour, minute = fi.minute_of(now)
        day, hour_of_day = fi.hour_of(now)
        shard = fraud.shard % destination.shards
        enforce = fraud.judge and fraud.rules.mode is fr.Mode.BLOCK
        condition: tuple[str, int] | None = None
        if enforce and destination.level == "prefix":
            condition = ("ct = :seen", fi.hour_total(items.get(_ref(fi.hour_key(fraud.app_id, destination, 0, hour)))))
        elif enforce:
            # The country's cap for this hour's evidence (its velocity cap, plus what verifications bought),
            # split over its shards: each shard's share is a condition of its write, so concurrent sends never
            # pass the cap together.
            share = sp.shares(fr.country_cap(fraud.rules, fr.last_hour(seen, now).verified), destination.shards)
            used = [
                fr.last_hour(fi.activity(fraud.app_id, destination, now, items, shards=[one]), now).sends
                for one in range(destination.shards)
            ]
            for offset in range(destination.shards):
                candidate = (fraud.shard + offset) % destination.shards
                # Shards filled past their share while a verification lifted the cap take it from this one.
                over = sum(max(0, used[o] - share[o]) for o in range(destination.shards) if o != candidate)
                room = share[candidate] - used[candidate] - over
                if room > 0:
                    shard = candidate
                    total = fi.hour_total(items.get(_ref(fi.hour_key(fraud.app_id, destination, shard, hour))))
                    condition = ("ct < :limit", total + room)
                    break
        key = fi.hour_key(fraud.app_id, destination, shard, hour)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": "ADD #c :one, ct :one SET #ttl = :ttl",
            "ExpressionAttributeNames": {"#c": f"c{minute}", "#ttl": "ttl"},
            "ExpressionAttributeValues": {":one": _n(1), ":ttl": _n(fi.hour_ttl(hour))},
        }
        checks = []
        if condition is not None:
            expression, value = condition
            placeholder = expression.split()[-1]
            absent_ok = (expression.startswith("ct =") and value == 0) or expression.startswith("ct <")
            update["ConditionExpression"] = f"attribute_not_exists(ct) OR {expression}" if absent_ok else expression
            update["ExpressionAttributeValues"][placeholder] = _n(value)
            previous = fi.hour_key(fraud.app_id, destination, shard, hour - 1)
            checks.append(
                _Check(
                    {
                        "ConditionCheck": {
                            "TableName": self._table,
                            "Key": previous,
                            "ConditionExpression": "attribute_not_exists(ct) OR ct <= :seen",
                            "ExpressionAttributeValues": {":seen": _n(fi.hour_total(items.get(_ref(previous))))},
                        }
                    },
                    lambda _: _StaleReadError(),
                )
            )
        checks.append(_Check({"Update": update}, lambda _: _StaleReadError()))
        checks.append(
            _Check(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": fi.day_key(fraud.app_id, destination, shard, day),
                        "UpdateExpression": "ADD #c :one SET #ttl = :ttl",
                        "ExpressionAttributeNames": {"#c": f"c{hour_of_day}", "#ttl": "ttl"},
                        "ExpressionAttributeValues": {":one": _n(1), ":ttl": _n(fi.day_ttl(day))},
                    }
                },
                lambda _: None,
            )
        )
        return checks, shard

    def _count_resent(self, fraud: FraudCharge, destination: Bucket, now: int) -> _Check:
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core.adapters import fraud_items as fi

        hour, minute = fi.minute_of(now)
        update = {
            "TableName": self._table,
            "Key": fi.hour_key(fraud.app_id, destination, fraud.shard % destination.shards, hour),
            "UpdateExpression": "ADD #r :one SET #ttl = :ttl",
            "ExpressionAttributeNames": {"#r": f"r{minute}", "#ttl": "ttl"},
            "ExpressionAttributeValues": {":one": _n(1), ":ttl": _n(fi.hour_ttl(hour))},
        }
        return _Check({"Update": update}, lambda _: None)

    def _guard_refunds(self, charge: SendCharge, receipt: SendReceipt) -> list[dict[str, Any]]:
        """Undo a send's bucket counts and budget charges (a provider refused the number: a 4xx)."""
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core.adapters import fraud_items as fi

        now, ops = charge.now, []
        fraud = charge.fraud
        if fraud is not None and fraud.count:
            hour, minute = fi.minute_of(now)
            day, hour_of_day = fi.hour_of(now)
            charged = dict(receipt.bucket_shards)
            for destination in fraud.buckets:
                shard = charged.get(destination.name, fraud.shard % destination.shards)
                for key, slot, extra in (
                    (fi.hour_key(fraud.app_id, destination, shard, hour), f"c{minute}", ", ct :minus"),
                    (fi.day_key(fraud.app_id, destination, shard, day), f"c{hour_of_day}", ""),
                ):
                    ops.append(
                        {
                            "Update": {
                                "TableName": self._table,
                                "Key": key,
                                "UpdateExpression": f"ADD #c :minus{extra}",
                                "ConditionExpression": "#c > :zero",
                                "ExpressionAttributeNames": {"#c": slot},
                                "ExpressionAttributeValues": {":minus": _n(-1), ":zero": _n(0)},
                            }
                        }
                    )
        for budget, shard, parts in receipt.budget_shards:
            ops.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": fi.budget_key(budget, shard, now),
                        "UpdateExpression": "ADD n :minus",
                        "ConditionExpression": "n >= :parts",
                        "ExpressionAttributeValues": {":minus": _n(-parts), ":parts": _n(parts)},
                    }
                }
            )
        return ops

    @tracer.capture_method(capture_response=False)
    def charge_attempts(self, receipt: SendReceipt, attempts: int, now: int) -> None:
        """Charge the budgets for provider attempts beyond the first (a failover sends, and may bill, twice)."""
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core.adapters import fraud_items as fi

        if attempts <= 0 or not receipt.budget_shards:
            return
        ops = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": fi.budget_key(budget, shard, now),
                    "UpdateExpression": "ADD n :parts SET #ttl = :ttl",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {
                        ":parts": _n(parts * attempts),
                        ":ttl": _n((budget.bucket(now) + 1) * budget.window + _HOUR),
                    },
                }
            }
            for budget, shard, parts in receipt.budget_shards
        ]
        try:
            self._client.transact_write_items(TransactItems=ops)
        except (ClientError, BotoCoreError):
            # The SMS went out either way; a lost charge only leaves the budget a few parts short.
            logger.warning("budget charge of failover attempts failed", attempts=attempts)

    def _verified_ops(self, challenge: Challenge, now: int) -> list[_Check]:
        """A verified challenge counts in its buckets' creation slots (while those are still read)."""
        # The guards' modules load with the first send or verify, not in every function's import.
        from otp_core.adapters import fraud_items as fi

        if challenge.fraud_app is None or challenge.region is None:
            return []
        updates = fi.slot_increments(
            self._table,
            challenge.fraud_app,
            challenge.phone_number,
            challenge.region,
            challenge.challenge_id,
            challenge.created_at,
            now,
            kind="v",
        )
        return [_Check(update, lambda _: None) for update in updates]

    def _charges(self, charge: SendCharge, items: dict[tuple[str, str], Item]) -> list[_Check]:
        """One increment per counter, capped by its sliding allowance; caps already reached raise at once,
        with the longest wait among them (a retry after a shorter one would only meet the next full cap).

        A lock in force, as read, raises first: the caller's own limits are judged before any guard (the
        lock's condition in the write still covers a lock set after the read)."""
        now = charge.now
        for subject in charge.locks:
            lock = items.get(_ref(self._keys.lock(subject)))
            if lock is not None and int(lock.get("until", {}).get("N", 0)) > now:
                raise _locked(lock, now)
        charges, waits = [], []
        for counter in charge.counters:
            bucket = counter.bucket(now)
            current = _count(items, self._keys.counter(counter, bucket))
            previous = _count(items, self._keys.counter(counter, bucket - 1))
            allowed = sliding_allowance(counter.cap, previous, now, counter.window)
            if current >= allowed:
                waits.append(sliding_retry_after(counter.cap, previous, current, now, counter.window))
                continue
            charges.append(
                _Check(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._keys.counter(counter, bucket),
                            "UpdateExpression": "ADD n :one SET #ttl = :ttl",
                            "ConditionExpression": "attribute_not_exists(n) OR n < :allowed",
                            "ExpressionAttributeNames": {"#ttl": "ttl"},
                            "ExpressionAttributeValues": {
                                ":one": _n(1),
                                ":allowed": _n(allowed),
                                ":ttl": _n((bucket + 2) * counter.window + _HOUR),
                            },
                        }
                    },
                    # The cap filled up after the read: read again, so the answer's Retry-After is the real one.
                    lambda _: _StaleReadError(),
                )
            )
            charges.append(self._unchanged(self._keys.counter(counter, bucket - 1), previous))
        if waits:
            raise _send_limited(max(waits))(None)
        return charges

    def _with_fresh_counts(
        self, build: Callable[[dict[tuple[str, str], Item]], list[_Check]], keys: Sequence[Item]
    ) -> None:
        """Read the counters, build the transaction from them, run it; read again when a count moved."""
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                self._transact(build(self._read(keys)))
            except _StaleReadError:
                if attempt == _CONFLICT_RETRIES:
                    break
                self._sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not a secret
            else:
                return
        raise RateLimitedError("too many concurrent requests for this challenge or number", retry_after=1)

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


def _count(items: dict[tuple[str, str], Item], key: Item) -> int:
    item = items.get(_ref(key))
    return int(item["n"]["N"]) if item and "n" in item else 0


def _locked(old: Item | None, now: int) -> RateLimitedError:
    until = int(old["until"]["N"]) if old and "until" in old else now + 1
    return RateLimitedError("too many failed verifications for this number; try again later", retry_after=until - now)


def _send_limited(retry_after: int) -> Callable[[Item | None], Exception]:
    def explain(_: Item | None) -> Exception:
        return RateLimitedError(
            "too many codes sent to this number or from this address; try again later", retry_after=retry_after
        )

    return explain


class _EnrollConflictError(Exception):
    """The user's authenticator is no longer the one the enrollment was decided against."""


class _AttemptLostError(Exception):
    """The challenge's condition failed: another request changed it, or it is finished or expired."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("attempt lost")
        self.item = item
