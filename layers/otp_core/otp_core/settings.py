"""Typed configuration, read once per cold start.

Every field maps to one environment variable of the same name in upper case. The SAM template passes the
stack parameters to the functions under these names, and the local stack reads the same names from its
own environment, so a policy setting means the same thing everywhere.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.alias_generators import to_camel

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
    return tuple(value) if isinstance(value, list) else value


def _json(value: object) -> object:
    # An environment variable holds a structured setting as JSON text; the admin API sends the structure.
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError:
            raise ValueError("must be JSON") from None
    return tuple(value) if isinstance(value, list) else value


_HOST = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


def _sender(value: str) -> str:
    if not any(char.isalpha() for char in value):
        raise ValueError("a sender ID must contain at least one letter")
    return value


SenderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 ]{1,11}$"), AfterValidator(_sender)]
_ORIGIN = re.compile(r"^(https|http)://([a-z0-9.-]+|\[::1\])(:[0-9]{1,5})?$")


def web_address(value: str, *, origin: bool) -> str:
    """An ``https`` origin or URL (``http`` only for localhost), without credentials or a fragment."""
    from urllib.parse import urlsplit

    if len(value) > 2048 or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("must be an absolute URL without spaces")
    if "\\" in value:
        # Browsers read a backslash as "/" in http(s) URLs, Python's parser does not: the two would disagree on
        # the host.
        raise ValueError("must not contain a backslash")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise ValueError("must be an https URL (http only for localhost), without user or password")
    if parts.scheme == "http" and parts.hostname not in {"localhost", "127.0.0.1", "::1"}:
        raise ValueError("http is allowed only for localhost; use https")
    if parts.fragment or "#" in value:
        raise ValueError("must not have a fragment")
    if origin and (not _ORIGIN.fullmatch(value) or parts.path or parts.query):
        raise ValueError("must be an origin: scheme, host and optional port, nothing else")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the port must be 1-65535") from exc
    if port == 0:
        raise ValueError("the port must be 1-65535")
    if origin and port == {"https": 443, "http": 80}[parts.scheme]:
        # Browsers send an origin without its default port (the Origin header, postMessage's event.origin), and
        # CORS compares origins exactly: https://shop.example:443 would never match.
        raise ValueError(f"leave out the default port :{port}")
    return value


class TestNumber(BaseModel):
    """A test number of an app: sends reach no provider, and ``code`` (of the app's code length) verifies."""

    __test__ = False  # not a pytest class

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    phone_number: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,10}$")]


class Policy(BaseModel):
    """The rules a request runs under: codes, limits, numbers and messages.

    The stack parameters give the policy of the app ``default``; it is a value passed to each use case (never
    read from a global deep in the core), so an app's own settings can replace it per request.
    """

    # Built on first validation only: the functions take their policy from validated Settings (model_construct
    # below), so a cold start never pays for a second schema of the same fields.
    # camelCase aliases are the admin API's names of the per-app settings (APP_SETTINGS below).
    model_config = ConfigDict(
        frozen=True, extra="ignore", defer_build=True, alias_generator=to_camel, populate_by_name=True
    )

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
    # The sender ID of the app's SMS where the provider takes one (None: the provider's own default).
    sender_id: SenderId | None = None
    # Message templates per language ({"es": "..."}), over the shipped ones (otp_core.messages).
    templates: dict[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")], str] = Field(default_factory=dict)
    # SMS routing: provider names in failover order, and per-country orders ("NZ:tnz,modica;AU:messagemedia").
    sms_providers: tuple[str, ...] = ("sns",)
    sms_country_routes: str = ""
    # Adaptive MFA rules (JSON, see otp_core.rules); empty uses the shipped default_rules.json.
    track_rules: str = ""
    # The ``aud`` of the app's tokens (unique across the apps of a deployment).
    token_audience: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "sms-otp"
    # Hosted page hand-off: the exact redirect URLs and the origins allowed to frame it and receive postMessage.
    redirect_urls: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Autofill: the WebOTP domain line and the Android SMS Retriever hash of the app's SMS.
    web_otp_domain: Annotated[str, StringConstraints(max_length=253, pattern=_HOST)] | None = None
    android_app_hash: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{11}$")] | None = None
    # Numbers whose sends reach no provider and whose fixed code verifies (app-store review, CI).
    test_numbers: tuple[TestNumber, ...] = ()
    # Phone verification for signed-in users: the customer's identity provider (empty issuer = disabled).
    idp_issuer: str = ""
    idp_audience: str = ""
    idp_jwks_url: str = ""

    _split_policy = field_validator(
        "allowed_countries",
        "blocked_countries",
        "allowed_number_types",
        "end_user_sender_ids",
        "sms_providers",
        "redirect_urls",
        "allowed_origins",
        mode="before",
    )(_csv)
    _structured = field_validator("templates", "test_numbers", mode="before")(_json)

    @field_validator("track_rules", mode="before")
    @classmethod
    def _rules_text(cls, value: Any) -> Any:
        # The admin API sends the rules as a JSON document; the stack parameter holds its text.
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    @field_validator("redirect_urls")
    @classmethod
    def _redirects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(web_address(url, origin=False) for url in value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(web_address(origin, origin=True) for origin in value)

    @model_validator(mode="after")
    def _fits_the_app(self) -> Policy:
        # What depends on other settings: the test codes' length and the templates' one-part rule.
        from otp_core.errors import InvalidMessageTemplateError
        from otp_core.messages import check_template

        if any(len(number.code) != self.code_length for number in self.test_numbers):
            raise ValueError(f"testNumbers: every code must have {self.code_length} digits (codeLength)")
        if len({number.phone_number for number in self.test_numbers}) != len(self.test_numbers):
            raise ValueError("testNumbers: a number is listed twice")
        # As a send fills {minutes}: the lifetime rounded up (599 s is "10 minutes"), never a shorter text.
        minutes = max(1, -(-self.code_ttl_seconds // 60))

        def check(template: str) -> None:
            check_template(
                template,
                app=self.app_name,
                code_length=self.code_length,
                minutes=minutes,
                android_app_hash=self.android_app_hash,
                web_otp_domain=self.web_otp_domain,
            )

        for language, template in self.templates.items():
            try:
                check(template)
            except InvalidMessageTemplateError as exc:
                raise ValueError(f"templates.{language}: {exc.detail}") from None
        if self.android_app_hash or self.web_otp_domain:
            # The shipped templates of the languages the app does not override must fit with the lines too.
            from otp_core.messages import DEFAULT_TEMPLATES

            field = "webOtpDomain" if self.web_otp_domain else "androidAppHash"
            for language, template in DEFAULT_TEMPLATES.items():
                if language in self.templates:
                    continue
                try:
                    check(template)
                except InvalidMessageTemplateError:
                    raise ValueError(
                        f"{field}: with the autofill lines the shipped {language} message no longer fits one SMS "
                        f"part with this app name and code length; set a shorter templates.{language}"
                    ) from None
        return self

    def test_code(self, phone_number: str) -> str | None:
        """The fixed code of a test number of this app, or None for any other number."""
        return next((number.code for number in self.test_numbers if number.phone_number == phone_number), None)

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
    # How an access token is told from an ID token: empty requires the RFC 9068 header typ "at+jwt"; a
    # "claim=value" pair (Cognito: "token_use=access") requires that claim instead.
    idp_access_token_claim: Annotated[str, Field(pattern=r"^(|[A-Za-z0-9_:.-]{1,64}=[A-Za-z0-9_:.-]{1,64})$")] = ""
    # SMS providers beyond SNS (otp_core.sms): per-country routes ("NZ:tnz,modica;AU:messagemedia"), the
    # one Secrets Manager secret holding every provider's credentials, per-attempt timeout and overall budget
    # (well under the 10 s function timeout), local endpoint overrides ("twilio=http://127.0.0.1:9001"),
    # the shared circuit breaker, and the public base URL of the delivery-status callbacks (empty = none).
    sms_provider_secret_id: str = ""
    sms_provider_timeout_seconds: Annotated[float, Field(ge=1, le=8)] = 3.0
    sms_send_budget_seconds: Annotated[float, Field(ge=1, le=8)] = 7.0
    sms_provider_endpoints: str = ""
    sms_circuit_failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 5
    sms_circuit_window_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    sms_circuit_cooldown_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    delivery_callback_base_url: str = ""
    # Where /v1/track's url sends browsers: the API's public base URL (a custom domain); empty uses the stage
    # URL the request came in at (API Gateway's domain name and stage, the ApiUrl output).
    public_base_url: Annotated[str, StringConstraints(pattern=r"^(https?://[^\s?#]+)?$")] = ""
    delivery_callback_tolerance_seconds: Annotated[int, Field(ge=30, le=3600)] = 300
    # AWS End User Messaging SMS (provider "eum", otp_core.sms.vendors.eum): the origination identity per country
    # ("US=arn:aws:sms-voice:...:pool/pool-1;GB=MyBrand;*=pool-2", "*" for every other country; empty lets the
    # service pick), the configuration set its delivery events go through (the template's, when eum is routed),
    # an optional protect configuration, a price cap per message in USD ("0.05"), a dry run that validates
    # without sending (a smoke test), and the SNS topic the events arrive on (a receipt from any other is refused).
    eum_origination_identities: Annotated[
        str,
        StringConstraints(
            pattern=r"^(|(\*|[A-Z]{2})=[A-Za-z0-9_:/+-]{1,256}(;(\*|[A-Z]{2})=[A-Za-z0-9_:/+-]{1,256})*)$"
        ),
    ] = ""
    eum_configuration_set: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:/-]{0,256}$")] = ""
    eum_protect_configuration_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:/-]{0,256}$")] = ""
    eum_max_price: Annotated[str, StringConstraints(pattern=r"^([0-9]{0,2}\.[0-9]{1,5})?$")] = ""
    eum_dry_run: bool = False
    eum_events_topic_arn: str = ""
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

    # Apps (otp_core.apps): whether settings may hold test numbers (the local stack allows them).
    allow_test_numbers: bool = False

    _split = field_validator("retired_signing_key_ids", mode="before")(_csv)

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
