"""Typed configuration, read once per cold start.

Every field maps to one environment variable of the same name in upper case. The SAM template passes the
stack parameters to the functions under these names, and the local stack reads the same names from its
own environment, so a policy setting means the same thing everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NUMBER_TYPES = frozenset(
    {
        "FIXED_LINE",
        "MOBILE",
        "FIXED_LINE_OR_MOBILE",
        "TOLL_FREE",
        "PREMIUM_RATE",
        "SHARED_COST",
        "VOIP",
        "PERSONAL_NUMBER",
        "PAGER",
        "UAN",
        "VOICEMAIL",
        "UNKNOWN",
    }
)


def _csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Policy(BaseModel):
    """The rules a request runs under: codes, limits, numbers and messages.

    The stack parameters give the policy of the app ``default``; it is a value passed to each use case (never
    read from a global deep in the core), so an app's own settings can replace it per request.
    """

    # Built on first validation only: the functions take their policy from validated Settings (model_construct
    # below), so a cold start never pays for a second schema of the same fields.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    app_name: str = "SMS OTP"
    token_ttl_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    code_length: Annotated[int, Field(ge=4, le=10)] = 6
    code_ttl_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 5
    resend_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    max_sends_per_10_minutes: Annotated[int, Field(ge=1, le=1000)] = 5
    max_sends_per_day: Annotated[int, Field(ge=1, le=10000)] = 10
    max_sends_per_ip_per_hour: Annotated[int, Field(ge=1, le=100000)] = 20
    lockout_threshold: Annotated[int, Field(ge=1, le=1000)] = 10
    lockout_window_seconds: Annotated[int, Field(ge=60, le=86400)] = 3600
    lockout_seconds: Annotated[int, Field(ge=60, le=86400)] = 900
    allowed_countries: tuple[str, ...] = ("*",)
    blocked_countries: tuple[str, ...] = ()
    allowed_number_types: tuple[str, ...] = ("MOBILE", "FIXED_LINE_OR_MOBILE")
    # Sender IDs end users may pick on /v1/verification/sms/send (empty: none, the stack's own sender is used).
    end_user_sender_ids: tuple[str, ...] = ()
    # Fraud guard (otp_core.fraud): block, monitor (trips only log and count) or off; spend guard
    # (otp_core.spend): SMS parts per hour and per day, 0 = off.
    fraud_guard_mode: Literal["block", "monitor", "off"] = "block"
    sms_budget_per_hour: Annotated[int, Field(ge=0, le=10_000_000)] = 1000
    sms_budget_per_day: Annotated[int, Field(ge=0, le=100_000_000)] = 10000

    _split_policy = field_validator(
        "allowed_countries", "blocked_countries", "allowed_number_types", "end_user_sender_ids", mode="before"
    )(_csv)

    @field_validator("app_name")
    @classmethod
    def _sms_app_name(cls, value: str) -> str:
        from otp_core.messages import APP_NAME_MAX, check_app_name

        # The stack name stands in when AppName is empty and may be longer: keep its first 20 characters.
        name = value.strip()[:APP_NAME_MAX].strip()
        check_app_name(name)
        return name

    @field_validator("allowed_countries", "blocked_countries")
    @classmethod
    def _upper_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(region.upper() for region in value)

    @field_validator("allowed_number_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - NUMBER_TYPES)
        if unknown:
            raise ValueError(f"unknown number types: {', '.join(unknown)}")
        return value


class Settings(Policy):
    """Service configuration: the default app's policy plus where everything lives.

    Attributes mirror the stack parameters; see the README's parameter table for their meaning.
    """

    table_name: str = "sms-otp-local"
    code_secret_id: str = "sms-otp/code-key"
    api_key_secret_id: str = "sms-otp/api-key"
    signing_key_id: str = "alias/sms-otp-signing"
    retired_signing_key_ids: tuple[str, ...] = ()
    token_issuer: str = "urn:sms-otp:local"
    token_audience: str = "sms-otp"
    sms_providers: tuple[str, ...] = ("sns",)
    # Adaptive MFA rules (JSON, see otp_core.rules); empty uses the shipped default_rules.json.
    track_rules: str = ""
    # Phone verification for signed-in users: the customer's identity provider (empty issuer = disabled).
    idp_issuer: str = ""
    idp_audience: str = ""
    idp_jwks_url: str = ""
    # How an access token is told from an ID token: empty requires the RFC 9068 header typ "at+jwt"; a
    # "claim=value" pair (Cognito: "token_use=access") requires that claim instead.
    idp_access_token_claim: Annotated[str, Field(pattern=r"^(|[A-Za-z0-9_:.-]{1,64}=[A-Za-z0-9_:.-]{1,64})$")] = ""
    # SMS providers beyond SNS (otp_core.sms): per-country routes ("NZ:tnz,modica;AU:messagemedia"), the
    # one Secrets Manager secret holding every provider's credentials, per-attempt timeout and overall budget
    # (well under the 10 s function timeout), local endpoint overrides ("twilio=http://127.0.0.1:9001"),
    # the shared circuit breaker, and the public base URL of the delivery-status callbacks (empty = none).
    sms_country_routes: str = ""
    sms_provider_secret_id: str = ""
    sms_provider_timeout_seconds: Annotated[float, Field(ge=1, le=8)] = 3.0
    sms_send_budget_seconds: Annotated[float, Field(ge=1, le=8)] = 7.0
    sms_provider_endpoints: str = ""
    sms_circuit_failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 5
    sms_circuit_window_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    sms_circuit_cooldown_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    delivery_callback_base_url: str = ""
    delivery_callback_tolerance_seconds: Annotated[int, Field(ge=30, le=3600)] = 300
    # The operators' key of the /v1/admin routes (its own secret, never an app's API key).
    admin_key_secret_id: str = "sms-otp/admin-key"
    # Fraud guard trip thresholds (see otp_core.fraud and the contract's "Fraud guard"), and the stack's own
    # daily budget of SMS parts across every app (0 = off).
    fraud_block_velocity_per_hour: Annotated[int, Field(ge=1, le=10_000)] = 10
    fraud_country_velocity_per_hour: Annotated[int, Field(ge=1, le=1_000_000)] = 50
    fraud_country_min_verified_percent: Annotated[int, Field(ge=0, le=100)] = 20
    fraud_verification_lag_seconds: Annotated[int, Field(ge=0, le=3000)] = 120
    fraud_conversion_min_challenges: Annotated[int, Field(ge=1, le=1_000_000)] = 20
    fraud_conversion_min_percent: Annotated[int, Field(ge=0, le=100)] = 35
    fraud_block_hours: Annotated[int, Field(ge=1, le=720)] = 12
    stack_sms_budget_per_day: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0

    _split = field_validator("retired_signing_key_ids", "sms_providers", mode="before")(_csv)

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=False)

    @property
    def policy(self) -> Policy:
        """The default app's policy (the stack parameters), already validated as part of these settings."""
        return Policy.model_construct(**{name: getattr(self, name) for name in Policy.model_fields})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from environment variables named like the fields, in upper case."""
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if env.get(name.upper())}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first use."""
    return Settings.from_env()
