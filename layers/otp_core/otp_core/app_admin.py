"""Apps at run time: which app a key opens (:class:`KeyAuthority`), the policy each request of an app runs
under (:class:`AppDirectory`), and the operators' use cases of ``/v1/admin/apps`` (:class:`AppAdmin`).

The functions read apps through caches that live :data:`POLICY_CACHE_SECONDS` (settings) and
:data:`KEY_CACHE_SECONDS` (the authorizer's key lookups); with API Gateway's 30-second authorizer cache on
top, a revoked key or a deleted app is refused within 60 seconds, and a settings change reaches every warm
function within 30. An admin write drops the caches of its own process at once (on the local stack, where
every function shares one process, that makes a change apply at once).
"""

from __future__ import annotations

import builtins
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otp_core.apps import (
    APP_ID,
    DESCRIPTION_MAX,
    KEY_ID,
    LAST_USED_EVERY_SECONDS,
    NAME_MAX,
    ApiKey,
    AppRecord,
    KeyGrant,
    NewKey,
    app_base,
    check_settings,
    default_audience,
    effective_policy,
    key_digest,
    merge,
    new_app_id,
    new_key,
    new_sid,
    stack_key,
)
from otp_core.caching import TtlCache
from otp_core.errors import (
    ConflictError,
    DependencyError,
    FieldError,
    InvalidRequestError,
    NotFoundError,
    OtpError,
    UnauthorizedError,
)
from otp_core.observability import logger
from otp_core.ports import AppStore, Clock
from otp_core.records import DEFAULT_APP
from otp_core.settings import Policy

POLICY_CACHE_SECONDS = 30.0
KEY_CACHE_SECONDS = 20.0
ADMIN = "admin"


def _default_record(base: Policy, now: int) -> AppRecord:
    return AppRecord(DEFAULT_APP, base.app_name, {}, now, new_sid())


@dataclass(frozen=True)
class AppPolicy:
    """An app's policy as a request runs under it, or why there is none (``None``: unknown or deleted)."""

    policy: Policy | None


class AppDirectory:
    """The policy of each app, cached: the only table read the apps add to a request, once per 30 seconds.

    Parameters
    ----------
    store:
        The app store.
    base:
        The stack's policy (the app ``default``'s parameters), under every app's overrides.
    allow_test_numbers:
        The stack's ``AllowTestNumbers``: without it, test numbers stored earlier are ignored (sends to them
        are ordinary sends), so switching it off takes effect at once.
    """

    def __init__(
        self,
        store: AppStore,
        base: Policy,
        *,
        allow_test_numbers: bool = False,
        seconds: float = POLICY_CACHE_SECONDS,
    ) -> None:
        self._store = store
        self._base = base
        self._allow_test_numbers = allow_test_numbers
        self._policies = TtlCache(seconds)
        self._apps = TtlCache(seconds, size=1)

    @property
    def base(self) -> Policy:
        return self._base

    def policy(self, app_id: str) -> Policy:
        """The policy requests of ``app_id`` run under.

        Raises
        ------
        UnauthorizedError
            No such app, or it was deleted (its keys stop working within 60 seconds; this refuses at once).
        DependencyError
            The app's stored settings no longer validate over the stack's parameters (logged).
        """
        found: AppPolicy = self._policies.get(app_id, lambda: self._load(app_id))
        if found.policy is None:
            raise UnauthorizedError("the API key is not valid")
        return found.policy

    def _load(self, app_id: str) -> AppPolicy:
        record = self._store.get(app_id)
        if record is None:
            return AppPolicy(self._base if app_id == DEFAULT_APP else None)
        if record.deleted_at is not None:
            return AppPolicy(None)
        return AppPolicy(self.effective(record))

    def effective(self, record: AppRecord) -> Policy:
        if not record.settings and record.app_id == DEFAULT_APP:
            return self._base  # default without overrides: the stack's policy, validated with the settings
        try:
            found = effective_policy(app_base(self._base, record.app_id), record.settings)
        except InvalidRequestError as exc:
            # Only a stack update can get here (stored settings were valid when written): say which field.
            fields = [error.field for error in exc.errors]
            logger.error("stored app settings no longer validate", app_id=record.app_id, fields=fields)
            raise DependencyError("this app's settings are invalid; an operator must correct them") from None
        if found.test_numbers and not self._allow_test_numbers:
            return found.model_copy(update={"test_numbers": ()})
        return found

    def exists(self, app_id: str) -> bool:
        """Whether ``app_id`` is a live app (``default`` always is)."""
        if app_id == DEFAULT_APP:
            return True
        found: AppPolicy = self._policies.get(app_id, lambda: self._load(app_id))
        return found.policy is not None

    def apps(self) -> list[tuple[str, Policy]]:
        """Every live app with its policy (``default`` included), cached like a policy."""

        def load() -> list[tuple[str, Policy]]:
            records = {record.app_id: record for record in self._store.list()}
            found: list[tuple[str, Policy]] = []
            if DEFAULT_APP not in records:
                found.append((DEFAULT_APP, self._base))
            for record in records.values():
                try:
                    found.append((record.app_id, self.effective(record)))
                except DependencyError:
                    continue  # logged; the other apps still work
            return found

        apps: list[tuple[str, Policy]] = self._apps.get("apps", load)
        return apps

    def allowed_origins(self) -> frozenset[str]:
        """The ``allowedOrigins`` of every live app together: the hosted page's ``frame-ancestors`` and the
        origins a client route's preflight allows (neither request names an app)."""
        return frozenset(origin for _, policy in self.apps() for origin in policy.allowed_origins)

    def app_of_idp(self, issuer: str, audience: str) -> tuple[str, Policy] | None:
        """The app whose identity provider settings match a token's ``iss`` and ``aud`` (None: no app's)."""
        for app_id, policy in self.apps():
            if policy.idp_issuer and policy.idp_issuer == issuer and policy.idp_audience == audience:
                return app_id, policy
        return None

    def forget(self, app_id: str | None = None) -> None:
        self._policies.forget(app_id)
        self._apps.forget()


class KeyAuthority:
    """Which credential a presented key is: the admin key, an app's live API key, or nothing.

    The digest lookup is cached :data:`KEY_CACHE_SECONDS` per digest (misses too, so garbage keys cost one
    read each per 20 seconds). The stack-generated key of ``default`` is stored on its first use.
    """

    def __init__(
        self,
        store: AppStore,
        clock: Clock,
        base: Policy,
        *,
        stack_secret: Callable[[], str],
        admin_secret: Callable[[], str],
        seconds: float = KEY_CACHE_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._base = base
        self._stack_secret = stack_secret
        self._admin_secret = admin_secret
        self._grants = TtlCache(seconds, size=4096)
        self._touched: dict[str, int] = {}

    def identify(self, presented: str) -> str | KeyGrant | None:
        """``ADMIN`` for the admin key, the grant of a live app key, or None."""
        digest = key_digest(presented)
        # The admin key is compared every time, in constant time, and wins should an app key ever equal it.
        if hmac.compare_digest(digest, key_digest(self._admin_secret())):
            return ADMIN
        grant: KeyGrant | None = self._grants.get(digest, lambda: self._lookup(digest))
        if grant is None or grant.revoked:
            return None
        self._touch(grant)
        return grant

    def _lookup(self, digest: str) -> KeyGrant | None:
        grant = self._store.grant(digest)
        if grant is None and hmac.compare_digest(digest, key_digest(self._stack_secret())):
            now = self._clock.now()
            self._store.ensure(_default_record(self._base, now))
            self._store.add_key(stack_key(digest, now), capped=False)
            grant = self._store.grant(digest)
        return grant

    def _touch(self, grant: KeyGrant) -> None:
        now = self._clock.now()
        if now - self._touched.get(grant.key_id, 0) < LAST_USED_EVERY_SECONDS:
            return
        self._touched[grant.key_id] = now
        if len(self._touched) > 4096:
            self._touched.clear()
        self._store.touch(grant.app_id, grant.key_id, now, LAST_USED_EVERY_SECONDS)


class AppAdmin:
    """``/v1/admin/apps``: apps and their keys.

    Parameters
    ----------
    store, directory, clock:
        The app store, the functions' cached view (dropped after each change) and the time.
    allow_test_numbers:
        The stack's ``AllowTestNumbers``.
    providers:
        The SMS providers this stack holds credentials for (those its parameters route to).
    phone_check:
        The number checks of a send, applied to test numbers.
    parse_routes:
        Reads ``smsCountryRoutes`` (otp_core.sms.routing.parse_country_routes).
    regions:
        The ISO 3166 alpha-2 regions a country list may name (libphonenumber's).
    stack_secret:
        Reads the stack-generated key of ``default`` (listed, and revocable, like any other).
    """

    def __init__(
        self,
        store: AppStore,
        directory: AppDirectory,
        clock: Clock,
        *,
        allow_test_numbers: bool,
        providers: Iterable[str],
        phone_check: Callable[[str, Policy], str],
        parse_routes: Callable[[str], Mapping[str, Sequence[str]]],
        stack_secret: Callable[[], str],
        regions: Iterable[str] = (),
    ) -> None:
        self._parse_routes = parse_routes
        self._regions = frozenset(regions)
        self._store = store
        self._directory = directory
        self._clock = clock
        self._allow_test_numbers = allow_test_numbers
        self._providers = tuple(providers)
        self._phone_check = phone_check
        self._stack_secret = stack_secret

    @property
    def _base(self) -> Policy:
        return self._directory.base

    # -- apps -----------------------------------------------------------------------------------------------

    def create(self, app_id: str | None, name: str, settings: Mapping[str, Any] | None) -> AppRecord:
        """Create an app (its ID generated when absent); it gets a unique token audience unless it names one.

        Raises
        ------
        InvalidRequestError
            A bad ID, name or setting (``errors`` name it).
        ConflictError
            The ID was ever used, or the audience is taken.
        """
        if app_id is not None:
            _check_app_id(app_id)
        if app_id == DEFAULT_APP:
            raise ConflictError("this appId is taken: default is the stack's app")
        app_id = app_id or new_app_id()
        overrides = dict(settings or {})
        overrides.setdefault("tokenAudience", default_audience(app_id, self._base.token_audience))
        policy = self._check(app_id, overrides)
        self._check_audience(app_id, policy.token_audience)
        self._check_idp(app_id, policy)
        record = AppRecord(app_id, _name(name), overrides, self._clock.now(), new_sid())
        self._store.create(record, policy.token_audience, _identity_provider(policy))
        self._directory.forget(app_id)
        logger.info("app created", app_id=app_id, settings=sorted(overrides))
        return record

    def list(self) -> builtins.list[AppRecord]:
        self._default()
        return sorted(self._store.list(), key=lambda record: record.app_id)

    def get(self, app_id: str) -> AppRecord:
        """The live app (NotFoundError for unknown, malformed and deleted IDs alike)."""
        if app_id == DEFAULT_APP:
            return self._default()
        record = self._store.get(app_id) if APP_ID.fullmatch(app_id) else None
        if record is None or record.deleted_at is not None:
            raise NotFoundError("no such app")
        return record

    def patch(self, app_id: str, name: str | None, settings: Mapping[str, Any] | None) -> AppRecord:
        """Rename and change settings key by key (``None`` removes an override); answers the new record."""
        old = self.get(app_id)
        overrides = merge(old.settings, settings or {})
        if app_id != DEFAULT_APP:
            # An app's audience is its own: removing the override gives the app its generated one back.
            overrides.setdefault("tokenAudience", default_audience(app_id, self._base.token_audience))
        policy = self._check(app_id, overrides)
        # The old settings are not validated again: after a stack update they may no longer be valid, and this
        # PATCH is how an operator repairs them.
        old_audience = str(old.settings.get("tokenAudience") or default_audience(app_id, self._base.token_audience))
        if policy.token_audience != old_audience:
            self._check_audience(app_id, policy.token_audience)
        self._check_idp(app_id, policy)
        new_name = _name(name) if name is not None else old.name
        self._store.update(old, new_name, overrides, old_audience, policy.token_audience, _identity_provider(policy))
        self._directory.forget(app_id)
        logger.info("app changed", app_id=app_id, settings=sorted(settings or {}))
        return AppRecord(old.app_id, new_name, overrides, old.created_at, old.sid, old.version + 1, old.keys)

    def delete(self, app_id: str) -> None:
        """Delete an app for good: its keys are revoked and its ID is never reused.

        Raises
        ------
        ConflictError
            ``default``, which the stack parameters define.
        """
        if app_id == DEFAULT_APP:
            raise ConflictError("the app default cannot be deleted")
        if not APP_ID.fullmatch(app_id):
            raise NotFoundError("no such app")
        # NotFoundError for unknown and deleted apps, after revoking any key a failed deletion left behind.
        self._store.delete(app_id, self._clock.now())
        self._directory.forget(app_id)
        logger.info("app deleted", app_id=app_id)

    # -- keys -----------------------------------------------------------------------------------------------

    def create_key(self, app_id: str, description: str | None) -> NewKey:
        """A new key of the app; its secret is in this answer only."""
        self.get(app_id)
        if description is not None and not description.strip():
            description = None
        if description is not None and (
            len(description) > DESCRIPTION_MAX or any(ord(char) < 0x20 or ord(char) == 0x7F for char in description)
        ):
            raise InvalidRequestError(
                "description is invalid",
                errors=[FieldError("description", f"at most {DESCRIPTION_MAX} characters, one line")],
            )
        made = new_key(app_id, description, self._clock.now())
        self._store.add_key(made.key)
        logger.info("api key created", app_id=app_id, key_id=made.key.key_id)
        return made

    def keys(self, app_id: str) -> builtins.list[ApiKey]:
        self.get(app_id)
        return sorted(self._store.keys(app_id), key=lambda key: (key.created_at, key.key_id))

    def revoke_key(self, app_id: str, key_id: str) -> None:
        """Revoke a key: it answers 401 within 60 seconds (API Gateway's and the authorizer's caches)."""
        self.get(app_id)
        key = (
            next((key for key in self._store.keys(app_id) if key.key_id == key_id), None)
            if KEY_ID.fullmatch(key_id)
            else None
        )
        if key is None or not self._store.revoke(key):
            raise NotFoundError("no such key")

    # -- helpers --------------------------------------------------------------------------------------------

    def _default(self) -> AppRecord:
        """The app ``default``, stored with its stack-generated key on first use."""
        now = self._clock.now()
        record = self._store.ensure(_default_record(self._base, now))
        try:
            self._store.add_key(stack_key(key_digest(self._stack_secret()), now), capped=False)
        except OtpError as exc:
            logger.warning("stack key not listed", code=exc.code)
        return record

    def _check(self, app_id: str, overrides: Mapping[str, Any]) -> Policy:
        return check_settings(
            app_base(self._base, app_id),
            overrides,
            allow_test_numbers=self._allow_test_numbers,
            providers=self._providers,
            phone_check=self._phone_check,
            parse_routes=self._parse_routes,
            known_regions=self._regions,
        )

    def _check_audience(self, app_id: str, audience: str) -> None:
        # The stack's own audience belongs to default even before default's record reserves anything.
        if app_id != DEFAULT_APP and audience == self._base.token_audience:
            raise ConflictError("this tokenAudience is another app's")

    def _check_idp(self, app_id: str, policy: Policy) -> None:
        # A signed-in user's token picks its app by issuer and audience: no two apps may share both.
        if not policy.idp_issuer:
            return
        self._directory.forget()
        for other, other_policy in self._directory.apps():
            same = (other_policy.idp_issuer, other_policy.idp_audience) == (policy.idp_issuer, policy.idp_audience)
            if other != app_id and same:
                raise ConflictError(f"the app {other} already uses this idpIssuer with this idpAudience")


def _identity_provider(policy: Policy) -> str | None:
    """What an app's identity provider reserves: its issuer and audience, which pick the app of a user's token
    (the read in ``_check_idp`` names the other app; this reservation closes the race between two changes)."""
    return f"{policy.idp_issuer}\x00{policy.idp_audience}" if policy.idp_issuer else None


def _check_app_id(app_id: str) -> None:
    if not APP_ID.fullmatch(app_id):
        raise InvalidRequestError(
            "appId is not an app ID", errors=[FieldError("appId", "must be 1-64 characters of [a-z0-9-]")]
        )


def _name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX or any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        raise InvalidRequestError("name is invalid", errors=[FieldError("name", f"1-{NAME_MAX} characters, one line")])
    return name
