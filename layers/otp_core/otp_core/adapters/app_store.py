"""DynamoDB store of the apps and their API keys, and the short-lived caches the functions read them through.

Items (see docs/architecture.md):

- ``APPS`` / ``APP#<appId>``: the app record (name, settings overrides as JSON text, Twilio SID digits,
  ``version`` for optimistic updates, ``keys`` = live keys, ``deletedAt`` kept forever: IDs are never reused);
- ``APPS`` / ``KEY#<appId>#<keyId>``: a live key as listed (digest, description, ``createdAt``, ``lastUsedAt``);
- ``APIKEY#<sha256>`` / ``APIKEY``: what the authorizer looks a key up by (app, key ID, ``revoked``); kept after
  revocation so a revoked stack-generated key is never bootstrapped again;
- ``AUDIENCE#<sha256 of the audience>`` / ``AUDIENCE``: which app holds a token audience (unique, and kept
  after the app moves to another one);
- ``IDP#<sha256 of issuer and audience>`` / ``IDP``: which app an identity provider's tokens are for (unique);
- ``TWSID#<hex>`` / ``TWSID``: which app a Twilio Service SID names (the Verify facade's lookup).

Every change is one conditional write or one transaction: a sixth key, a taken ID or audience and a change
racing another change are refused by their conditions, never by a read before the write.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from otp_core.apps import MAX_KEYS, ApiKey, AppRecord, KeyGrant
from otp_core.errors import ConflictError, DependencyError, NotFoundError
from otp_core.observability import logger
from otp_core.ports import AppStore

Item = dict[str, dict[str, Any]]
APPS_PARTITION = "APPS"
_UNAVAILABLE = "the app store is unavailable; retry later"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def app_key(app_id: str) -> Item:
    return {"pk": _s(APPS_PARTITION), "sk": _s(f"APP#{app_id}")}


def listed_key(app_id: str, key_id: str) -> Item:
    return {"pk": _s(APPS_PARTITION), "sk": _s(f"KEY#{app_id}#{key_id}")}


def grant_key(digest: str) -> Item:
    return {"pk": _s(f"APIKEY#{digest}"), "sk": _s("APIKEY")}


def audience_key(audience: str) -> Item:
    digest = hashlib.sha256(audience.encode("utf-8")).hexdigest()
    return {"pk": _s(f"AUDIENCE#{digest}"), "sk": _s("AUDIENCE")}


def idp_key(identity_provider: str) -> Item:
    digest = hashlib.sha256(identity_provider.encode("utf-8")).hexdigest()
    return {"pk": _s(f"IDP#{digest}"), "sk": _s("IDP")}


def sid_key(sid: str) -> Item:
    return {"pk": _s(f"TWSID#{sid}"), "sk": _s("TWSID")}


def record_from_item(item: Item) -> AppRecord:
    return AppRecord(
        app_id=item["appId"]["S"],
        name=item["name"]["S"],
        settings=json.loads(item["settings"]["S"]),
        created_at=int(item["createdAt"]["N"]),
        sid=item["sid"]["S"],
        version=int(item["version"]["N"]),
        keys=int(item.get("keys", {}).get("N", 0)),
        deleted_at=int(item["deletedAt"]["N"]) if "deletedAt" in item else None,
    )


def _record_item(record: AppRecord) -> Item:
    return {
        **app_key(record.app_id),
        "appId": _s(record.app_id),
        "name": _s(record.name),
        "settings": _s(json.dumps(record.settings, separators=(",", ":"), sort_keys=True)),
        "createdAt": _n(record.created_at),
        "sid": _s(record.sid),
        "version": _n(record.version),
        "keys": _n(record.keys),
    }


def _key_from_item(item: Item) -> ApiKey:
    return ApiKey(
        key_id=item["keyId"]["S"],
        app_id=item["appId"]["S"],
        digest=item["digest"]["S"],
        description=item["description"]["S"] if "description" in item else None,
        created_at=int(item["createdAt"]["N"]),
        last_used_at=int(item["lastUsedAt"]["N"]) if "lastUsedAt" in item else None,
    )


def _failed_conditions(exc: ClientError) -> list[bool]:
    """Per transaction item: did its condition fail? (Raises DependencyError for anything but a cancellation.)"""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise DependencyError(_UNAVAILABLE) from exc
    reasons = exc.response.get("CancellationReasons") or []
    failed = [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons]
    if not any(failed):
        raise DependencyError(_UNAVAILABLE) from exc  # a conflict with a concurrent change: retry
    return failed


class DynamoAppStore(AppStore):
    """Apps and keys on the service's table.

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

    # -- apps -----------------------------------------------------------------------------------------------

    def get(self, app_id: str) -> AppRecord | None:
        """The record, deleted ones included (None: never created)."""
        item = self._get(app_key(app_id))
        return record_from_item(item) if item else None

    def list(self) -> builtins.list[AppRecord]:
        """Every live app, by ID."""
        items = self._query("APP#")
        return [record for record in map(record_from_item, items) if record.deleted_at is None]

    def create(self, record: AppRecord, audience: str, identity_provider: str | None = None) -> None:
        """Store a new app with its audience, identity provider and Twilio SID reserved, in one transaction.

        Raises
        ------
        ConflictError
            The ID was ever used, or the audience or identity provider is another app's.
        """
        ops = [
            self._put(_record_item(record), "attribute_not_exists(pk)"),
            self._put({**audience_key(audience), "appId": _s(record.app_id)}, "attribute_not_exists(pk)"),
            self._put({**sid_key(record.sid), "appId": _s(record.app_id)}, "attribute_not_exists(pk)"),
        ]
        if identity_provider is not None:
            ops.append(self._reserve(idp_key(identity_provider), record.app_id))
        try:
            self._client.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            failed = _failed_conditions(exc)
            if failed[0]:
                raise ConflictError("this appId is taken (IDs of deleted apps are never reused)") from None
            if len(failed) > 1 and failed[1]:
                raise ConflictError("this tokenAudience is another app's") from None
            if len(failed) > 3 and failed[3]:
                raise ConflictError("another app uses this idpIssuer with this idpAudience") from None
            raise DependencyError(_UNAVAILABLE) from exc  # a SID collision of 128 random bits: retry
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc

    def ensure(self, record: AppRecord) -> AppRecord:
        """The stored record of ``record.app_id``, storing ``record`` first if there is none (the app
        ``default``, which the stack parameters define, is stored on first use)."""
        try:
            self._client.transact_write_items(
                TransactItems=[
                    self._put(_record_item(record), "attribute_not_exists(pk)"),
                    self._put({**sid_key(record.sid), "appId": _s(record.app_id)}, "attribute_not_exists(pk)"),
                ]
            )
        except ClientError as exc:
            _failed_conditions(exc)  # already there: read it
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        stored = self.get(record.app_id)
        if stored is None:
            raise DependencyError(_UNAVAILABLE)
        return stored

    def update(
        self,
        old: AppRecord,
        name: str,
        settings: dict[str, Any],
        old_audience: str,
        audience: str,
        identity_provider: str | None = None,
    ) -> None:
        """Replace name and settings if the record is still the one read (its version), reserving a new audience.

        Raises
        ------
        ConflictError
            The audience is another app's, or the app changed or was deleted meanwhile.
        """
        ops: builtins.list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": app_key(old.app_id),
                    "UpdateExpression": "SET #name = :name, settings = :settings, version = version + :one",
                    "ConditionExpression": "version = :version AND attribute_not_exists(deletedAt)",
                    "ExpressionAttributeNames": {"#name": "name"},
                    "ExpressionAttributeValues": {
                        ":name": _s(name),
                        ":settings": _s(json.dumps(settings, separators=(",", ":"), sort_keys=True)),
                        ":one": _n(1),
                        ":version": _n(old.version),
                    },
                }
            }
        ]
        if audience != old_audience:
            # The old audience stays reserved for this app (a relying party that checks only iss and aud must
            # never see another app's tokens under it); the app may take it back.
            ops.append(self._reserve(audience_key(audience), old.app_id))
        if identity_provider is not None:
            ops.append(self._reserve(idp_key(identity_provider), old.app_id))
        try:
            self._client.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            failed = _failed_conditions(exc)
            reserved = ops[1:]
            for op, refused in zip(reserved, failed[1:], strict=False):
                if refused and op["Put"]["Item"]["pk"]["S"].startswith("IDP#"):
                    raise ConflictError("another app uses this idpIssuer with this idpAudience") from None
                if refused:
                    raise ConflictError("this tokenAudience is another app's") from None
            raise ConflictError("the app changed meanwhile (or was deleted); read it and try again") from None
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc

    def delete(self, app_id: str, now: int) -> None:
        """Mark the app deleted (for good), then revoke each of its keys.

        No key can be added once the mark is written (a new key's transaction requires the app undeleted), so
        the keys listed after it are all there are.

        Raises
        ------
        NotFoundError
            No such app, or already deleted.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key=app_key(app_id),
                UpdateExpression="SET deletedAt = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(deletedAt)",
                ExpressionAttributeValues={":now": _n(now)},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise DependencyError(_UNAVAILABLE) from exc
            # Already deleted: finish a deletion that failed after its mark (its keys), then answer as gone.
            self._revoke_all(app_id)
            raise NotFoundError("no such app") from None
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        self._revoke_all(app_id)

    def _revoke_all(self, app_id: str) -> None:
        for key in self.keys(app_id):
            self.revoke(key, deleted=True)

    # -- keys -----------------------------------------------------------------------------------------------

    def keys(self, app_id: str) -> builtins.list[ApiKey]:
        return [_key_from_item(item) for item in self._query(f"KEY#{app_id}#")]

    def add_key(self, key: ApiKey, *, capped: bool = True) -> bool:
        """Store a new key of a live app: one transaction counts it, lists it and makes it findable by digest.

        ``capped`` False (the stack-generated key, stored on first use) skips the cap of 5, and a digest stored
        before (the same secret, perhaps revoked) is left as it is.

        Returns
        -------
        bool
            True when stored; False for an uncapped key whose digest was already stored.

        Raises
        ------
        ConflictError
            The app already holds 5 keys.
        NotFoundError
            The app does not exist or was deleted.
        """
        condition = "attribute_exists(pk) AND attribute_not_exists(deletedAt)"
        values: dict[str, Any] = {":one": _n(1)}
        if capped:
            condition += " AND (attribute_not_exists(#keys) OR #keys < :cap)"
            values[":cap"] = _n(MAX_KEYS)
        listed: Item = {
            **listed_key(key.app_id, key.key_id),
            "keyId": _s(key.key_id),
            "appId": _s(key.app_id),
            "digest": _s(key.digest),
            "createdAt": _n(key.created_at),
        }
        if key.description:
            listed["description"] = _s(key.description)
        ops = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": app_key(key.app_id),
                    "UpdateExpression": "ADD #keys :one",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#keys": "keys"},
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            self._put(listed, "attribute_not_exists(pk)"),
            self._put(
                {**grant_key(key.digest), "appId": _s(key.app_id), "keyId": _s(key.key_id)},
                "attribute_not_exists(pk)",
            ),
        ]
        try:
            self._client.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            failed = _failed_conditions(exc)
            if failed[0]:
                reasons = exc.response.get("CancellationReasons") or []
                old = reasons[0].get("Item") if reasons else None
                if old and "deletedAt" not in old:
                    raise ConflictError(f"an app holds at most {MAX_KEYS} keys; revoke one first") from None
                raise NotFoundError("no such app") from None
            if not capped:
                return False
            raise DependencyError(_UNAVAILABLE) from exc  # a key ID or digest collision of random values: retry
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        return True

    def revoke(self, key: ApiKey, *, deleted: bool = False) -> bool:
        """Revoke a listed key: unlist it, mark its digest revoked and uncount it, in one transaction.

        Returns False when it was no longer listed (revoked meanwhile).
        """
        ops: builtins.list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": listed_key(key.app_id, key.key_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": grant_key(key.digest),
                    "UpdateExpression": "SET revoked = :yes, appId = :app, keyId = :key",
                    "ExpressionAttributeValues": {
                        ":yes": {"BOOL": True},
                        ":app": _s(key.app_id),
                        ":key": _s(key.key_id),
                    },
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": app_key(key.app_id),
                    "UpdateExpression": "ADD #keys :minus",
                    "ExpressionAttributeNames": {"#keys": "keys"},
                    "ExpressionAttributeValues": {":minus": _n(-1)},
                }
            },
        ]
        try:
            self._client.transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if _failed_conditions(exc)[0]:
                return False
            raise DependencyError(_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        logger.info("api key revoked", app_id=key.app_id, key_id=key.key_id, app_deleted=deleted)
        return True

    def grant(self, digest: str) -> KeyGrant | None:
        """What a key digest opens (None: no such key). Revoked keys answer with ``revoked`` set."""
        # Strongly consistent: a key used right after it was made must not be cached as unknown.
        item = self._get(grant_key(digest))
        if not item or "appId" not in item or "keyId" not in item:
            return None
        return KeyGrant(item["appId"]["S"], item["keyId"]["S"], revoked=item.get("revoked", {}).get("BOOL", False))

    def touch(self, app_id: str, key_id: str, now: int, every: int) -> None:
        """Record a key's last use, at most once per ``every`` seconds (a conditional write; losing it is fine)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=listed_key(app_id, key_id),
                UpdateExpression="SET lastUsedAt = :now",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(lastUsedAt) OR lastUsedAt < :cutoff)",
                ExpressionAttributeValues={":now": _n(now), ":cutoff": _n(now - every)},
            )
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            if code != "ConditionalCheckFailedException":
                logger.warning("key use not recorded", cause=type(exc).__name__)

    def app_of_sid(self, sid: str) -> str | None:
        item = self._get(sid_key(sid), consistent=False)
        return item["appId"]["S"] if item and "appId" in item else None

    # -- helpers --------------------------------------------------------------------------------------------

    def _reserve(self, key: Item, app_id: str) -> dict[str, Any]:
        """Reserve a unique value (an audience, an identity provider) for ``app_id``: free, or already its own."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {**key, "appId": _s(app_id)},
                "ConditionExpression": "attribute_not_exists(pk) OR appId = :app",
                "ExpressionAttributeValues": {":app": _s(app_id)},
            }
        }

    def _put(self, item: Item, condition: str) -> dict[str, Any]:
        return {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": condition}}

    def _get(self, key: Item, *, consistent: bool = True) -> Item | None:
        try:
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=consistent)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyError(_UNAVAILABLE) from exc
        item: Item | None = response.get("Item")
        return item

    def _query(self, prefix: str) -> builtins.list[Item]:
        items: builtins.list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {":pk": _s(APPS_PARTITION), ":prefix": _s(prefix)},
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            try:
                response = self._client.query(**request)
            except (ClientError, BotoCoreError) as exc:
                raise DependencyError(_UNAVAILABLE) from exc
            items.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return items
