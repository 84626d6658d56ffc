"""Apps: several apps in one deployment, each with its own keys, settings, users and data.

Pure rules, no boto3: the app record and its API keys, how a key is made and stored (only its SHA-256 digest:
the secret is 256 random bits, so a keyed hash would add nothing), and the per-app settings. An app's
settings are overrides of the stack's policy (the app ``default``'s parameters), named as the contract names
them; :func:`effective_policy` lays them over the stack's and validates the result with the one
:class:`~otp_core.settings.Policy` model the stack parameters are validated with, so a setting means the same
in both places and a change is checked as a whole (a test code of the new code length, a template that fits
one part with the new app name).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from otp_core.errors import FieldError, InvalidRequestError, OtpError
from otp_core.messages import APP_NAME_MAX
from otp_core.records import DEFAULT_APP
from otp_core.settings import Policy
from otp_core.settings import web_address as _web_address

# The per-app settings, by the contract's name -> the Policy field that holds them.
APP_SETTINGS: Mapping[str, str] = {
    "codeLength": "code_length",
    "codeTtlSeconds": "code_ttl_seconds",
    "maxAttempts": "max_attempts",
    "resendCooldownSeconds": "resend_cooldown_seconds",
    "maxSendsPer10Minutes": "max_sends_per_10_minutes",
    "maxSendsPerDay": "max_sends_per_day",
    "maxSendsPerIpPerHour": "max_sends_per_ip_per_hour",
    "allowedCountries": "allowed_countries",
    "blockedCountries": "blocked_countries",
    "allowedNumberTypes": "allowed_number_types",
    "appName": "app_name",
    "senderId": "sender_id",
    "templates": "templates",
    "smsProviders": "sms_providers",
    "smsCountryRoutes": "sms_country_routes",
    "trackRules": "track_rules",
    "tokenAudience": "token_audience",
    "redirectUrls": "redirect_urls",
    "allowedOrigins": "allowed_origins",
    "webOtpDomain": "web_otp_domain",
    "androidAppHash": "android_app_hash",
    "fraudGuardMode": "fraud_guard_mode",
    "smsBudgetPerHour": "sms_budget_per_hour",
    "smsBudgetPerDay": "sms_budget_per_day",
    "testNumbers": "test_numbers",
    "idpIssuer": "idp_issuer",
    "idpAudience": "idp_audience",
    "idpJwksUrl": "idp_jwks_url",
    "endUserSenderIds": "end_user_sender_ids",
}
# Per-app settings with no stack parameter: an app (default included) sets them through the admin API.
APP_ONLY_SETTINGS = frozenset(
    {"sender_id", "templates", "test_numbers", "redirect_urls", "allowed_origins", "web_otp_domain", "android_app_hash"}
)
MAX_KEYS = 5
APP_ID = re.compile(r"[a-z0-9-]{1,64}")
KEY_ID = re.compile(r"key_[0-9a-f]{16}")
KEY_PREFIX = "sk_"
NAME_MAX = 100
DESCRIPTION_MAX = 200
# Where a key's last use is recorded at most this often (the authorizer writes it, never per request).
LAST_USED_EVERY_SECONDS = 300


@dataclass(frozen=True)
class AppRecord:
    """A stored app. ``settings``: its overrides by contract name, as JSON values; ``sid``: the 32 hex digits of
    its Twilio Service and account SIDs; ``deleted_at``: set forever once deleted (an ID is never reused)."""

    app_id: str
    name: str
    settings: Mapping[str, Any]
    created_at: int
    sid: str
    version: int = 0
    keys: int = 0
    deleted_at: int | None = None

    @property
    def twilio_service_sid(self) -> str:
        return f"VA{self.sid}"

    @property
    def twilio_account_sid(self) -> str:
        return f"AC{self.sid}"


@dataclass(frozen=True)
class ApiKey:
    """One API key of an app as listed: never its secret, only the digest the authorizer looks it up by."""

    key_id: str
    app_id: str
    digest: str
    description: str | None
    created_at: int
    last_used_at: int | None = None


@dataclass(frozen=True)
class KeyGrant:
    """What a presented key's digest maps to: its app and key, and whether it was revoked."""

    app_id: str
    key_id: str
    revoked: bool = False


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``secret`` is shown once, in the answer that creates it, and never stored."""

    key: ApiKey
    secret: str


def key_digest(secret: str) -> str:
    """The stored form of an API key: its SHA-256 digest (hex). The lookup by digest is a key lookup, so its
    time does not depend on how much of a guess matches a real key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_key(app_id: str, description: str | None, now: int) -> NewKey:
    """A new API key: ``sk_`` and 256 random bits (base64url), with a random key ID."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(f"key_{secrets.token_hex(8)}", app_id, key_digest(secret), description, now)
    return NewKey(key, secret)


def stack_key(digest: str, now: int) -> ApiKey:
    """The key the stack generated for the app ``default`` (its secret is in Secrets Manager), listed and
    revocable like any other; its ID follows from its digest, so a rotated secret is a new key."""
    key_id = "key_" + hashlib.sha256(f"stack-key\x00{digest}".encode()).hexdigest()[:16]
    return ApiKey(key_id, DEFAULT_APP, digest, "generated by the stack", now)


def new_app_id() -> str:
    return f"app-{secrets.token_hex(6)}"


def new_sid() -> str:
    """The 32 lower-case hex digits an app's Twilio Service SID (``VA``) and account SID (``AC``) share."""
    return secrets.token_hex(16)


def default_audience(app_id: str, stack_audience: str) -> str:
    """The token audience an app gets unless it sets one: the stack's, for ``default``; unique for others."""
    return stack_audience if app_id == DEFAULT_APP else f"urn:sms-otp:app:{app_id}"


# The stack's identity provider parameters are the app default's alone (the contract's "Apps"): another app
# verifies signed-in users only with an identity provider of its own.
_DEFAULT_ONLY = {"idp_issuer": "", "idp_audience": "", "idp_jwks_url": ""}


def app_base(base: Policy, app_id: str) -> Policy:
    """What an app's settings lie over: the stack's policy, without default's identity provider for others."""
    return base if app_id == DEFAULT_APP else base.model_copy(update=_DEFAULT_ONLY)


def merge(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Settings merged key by key; a ``None`` (JSON ``null``) removes an override."""
    merged = dict(current)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def effective_policy(base: Policy, overrides: Mapping[str, Any]) -> Policy:
    """The stack's policy with an app's overrides laid over it, validated as one.

    Raises
    ------
    InvalidRequestError
        A setting is unknown, of the wrong type or invalid; ``errors`` name it (``settings.<name>``).
    """
    unknown = [name for name in overrides if name not in APP_SETTINGS]
    if unknown:
        raise InvalidRequestError(
            "unknown setting", errors=[FieldError(f"settings.{name}", "unknown setting") for name in unknown]
        )
    document = {**base.model_dump(mode="json", by_alias=True), **overrides}
    try:
        # Strict, from JSON: "6" is not a code length, and a list is read as the tuple it becomes.
        return Policy.model_validate_json(json.dumps(document), strict=True)
    except ValidationError as exc:
        raise InvalidRequestError("the settings are invalid", errors=list(_field_errors(exc))) from None


def _field_errors(exc: ValidationError) -> Iterable[FieldError]:
    for error in exc.errors(include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        location = ".".join(str(part) for part in error["loc"])
        if not location and ": " in message:
            # A check across settings (Policy's model validator) names its field at the start of its message.
            location, _, message = message.partition(": ")
        yield FieldError(f"settings.{location}" if location else "settings", message)


def check_settings(
    base: Policy,
    overrides: Mapping[str, Any],
    *,
    allow_test_numbers: bool,
    providers: Iterable[str],
    phone_check: Callable[[str, Policy], str],
    parse_routes: Callable[[str], Mapping[str, Sequence[str]]],
    known_regions: frozenset[str] | set[str] = frozenset(),
) -> Policy:
    """Validate an app's overrides as the admin API stores them, and return the app's policy.

    Beyond :func:`effective_policy`: an app name an operator sets is at most 20 characters, countries are
    ``known_regions`` (ISO 3166 alpha-2), the routes name only ``providers`` (those the stack holds credentials
    for), the rules parse, test numbers are allowed on this stack and each one passes the app's own number
    checks (a test number no send could reach is refused now, not at the first review), and the identity
    provider is named whole or not at all.

    Raises
    ------
    InvalidRequestError
        With ``errors`` naming each setting that fails.
    """
    policy = effective_policy(base, overrides)
    errors: list[FieldError] = []
    name = overrides.get("appName")
    if isinstance(name, str) and len(name.strip()) > APP_NAME_MAX:
        # The stack name may stand in cut to 20 characters; a name an operator sets is refused instead.
        errors.append(FieldError("settings.appName", f"must be 1 to {APP_NAME_MAX} characters"))
    for setting in ("allowedCountries", "blockedCountries"):
        if setting in overrides:
            regions = getattr(policy, APP_SETTINGS[setting])
            unknown = sorted(set(regions) - known_regions - {"*"})
            if unknown:
                errors.append(FieldError(f"settings.{setting}", f"not ISO 3166 alpha-2 regions: {', '.join(unknown)}"))
    available = set(providers)
    routed = list(policy.sms_providers)
    if not routed:
        errors.append(FieldError("settings.smsProviders", "name at least one provider"))
    try:
        routed += [name for route in parse_routes(policy.sms_country_routes).values() for name in route]
    except ValueError as exc:
        errors.append(FieldError("settings.smsCountryRoutes", str(exc)))
    missing = sorted(set(routed) - available)
    if missing:
        field = "settings.smsProviders" if set(missing) & set(policy.sms_providers) else "settings.smsCountryRoutes"
        errors.append(
            FieldError(
                field,
                f"this stack holds no credentials for {', '.join(missing)} (it has {', '.join(sorted(available))})",
            )
        )
    if "trackRules" in overrides:
        from otp_core.rules import load_rules

        try:
            load_rules(policy.track_rules)
        except ValueError as exc:
            errors.append(FieldError("settings.trackRules", str(exc)))
    if policy.test_numbers and not allow_test_numbers:
        errors.append(FieldError("settings.testNumbers", "this stack does not allow test numbers (AllowTestNumbers)"))
    for index, number in enumerate(policy.test_numbers):
        try:
            phone_check(number.phone_number, policy)
        except OtpError as exc:  # the contract's number errors: invalid, unsupported country or type
            errors.append(FieldError(f"settings.testNumbers.{index}.phoneNumber", exc.detail))
    idp = (policy.idp_issuer, policy.idp_audience, policy.idp_jwks_url)
    if {"idpIssuer", "idpAudience", "idpJwksUrl"} & set(overrides) and any(idp) and not all(idp):
        errors.append(FieldError("settings.idpIssuer", "set idpIssuer, idpAudience and idpJwksUrl together"))
    if policy.idp_jwks_url:
        try:
            _web_address(policy.idp_jwks_url, origin=False)
        except ValueError as exc:
            errors.append(FieldError("settings.idpJwksUrl", str(exc)))
    if errors:
        raise InvalidRequestError("the settings are invalid", errors=errors)
    return policy
