"""Process-wide wiring: AWS clients, secrets and services, built once per cold start and on first use.

Handlers call these factories inside their routes, so a function builds only what it uses and tests can
reset the caches with :func:`reset` after changing the environment.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from otp_core.codes import CodeBook
from otp_core.errors import DependencyError
from otp_core.ports import SystemClock
from otp_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from otp_core.mfa import MfaService
    from otp_core.service import ChallengeService

# Fail fast inside API Gateway's 29 s limit and the functions' timeout; the SDK retries throttling itself.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
SECRET_MAX_AGE_SECONDS = 300


def settings() -> Settings:
    return get_settings()


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def secret(secret_id: str) -> str:
    """Read a plain-string secret through the Powertools parameters cache (refreshed every 5 minutes)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        value = _secrets_provider(SecretsProvider).get(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    except GetParameterError as exc:
        raise DependencyError("a secret the service needs is unavailable; retry later") from exc
    return str(value)


@cache
def _secrets_provider(provider_class: Any) -> Any:
    return provider_class(boto3_client=client("secretsmanager"))


@cache
def code_book() -> CodeBook:
    return CodeBook(secret(settings().code_secret_id).encode(), settings().code_length)


@cache
def clock() -> SystemClock:
    return SystemClock()


@cache
def repository() -> Any:
    from otp_core.adapters.dynamodb import DynamoChallengeRepository

    return DynamoChallengeRepository(client("dynamodb"), settings())


@cache
def identities() -> Any:
    from otp_core.adapters.identity import DynamoIdentityRepository

    return DynamoIdentityRepository(client("dynamodb"), settings().table_name)


@cache
def sms_sender() -> Any:
    """The routed, failing-over SMS sender; vendor adapters are imported only for configured providers."""
    from otp_core.providers import build_sender

    config = settings()
    # One short attempt per provider: failover, not SDK retries, is the answer to a slow provider, and the
    # whole send must stay inside the function timeout.
    sns_config = Config(
        connect_timeout=2,
        read_timeout=config.sms_provider_timeout_seconds,
        retries={"mode": "standard", "max_attempts": 1},
    )
    return build_sender(
        config,
        load_credentials=lambda: _json_secret(config.sms_provider_secret_id),
        dynamodb_client=client("dynamodb"),
        sns_client_factory=lambda: boto3.client("sns", config=sns_config),
    )


def _json_secret(secret_id: str) -> dict[str, Any]:
    if not secret_id:
        raise DependencyError("no SMS provider secret is configured")
    try:
        value = json.loads(secret(secret_id))
    except ValueError as exc:
        raise DependencyError("the SMS provider secret is not JSON") from exc
    if not isinstance(value, dict):
        raise DependencyError("the SMS provider secret is not a JSON object")
    return value


@cache
def delivery_recorder() -> Any:
    from otp_core.adapters.circuit import DeliveryRecorder

    return DeliveryRecorder(client("dynamodb"), settings().table_name)


@cache
def token_issuer() -> Any:
    from otp_core.adapters.kms import KmsSigner
    from otp_core.tokens import TokenIssuer

    config = settings()
    return TokenIssuer(
        KmsSigner(client("kms"), config.signing_key_id),
        issuer=config.token_issuer,
        audience=config.token_audience,
        ttl_seconds=config.token_ttl_seconds,
        clock=clock(),
    )


@cache
def token_verifier() -> Any:
    """Checks this service's tokens against the public keys of the current and retired signing keys."""
    from otp_core.adapters.kms import KmsPublicKeys
    from otp_core.jwks import build_jwks
    from otp_core.token_verify import TokenVerifier

    config = settings()
    key_ids = dict.fromkeys((config.signing_key_id, *config.retired_signing_key_ids))
    jwks = build_jwks(KmsPublicKeys(client("kms")), key_ids)
    return TokenVerifier(jwks, issuer=config.token_issuer, audience=config.token_audience)


@cache
def rules() -> Any:
    from otp_core.rules import load_rules

    return load_rules(settings().track_rules)


@cache
def idp_verifier() -> Any:
    from otp_core.idp import IdpTokenVerifier

    config = settings()
    if not (config.idp_issuer and config.idp_audience and config.idp_jwks_url):
        raise DependencyError("phone verification for signed-in users is not configured")
    return IdpTokenVerifier(
        config.idp_issuer,
        config.idp_audience,
        config.idp_jwks_url,
        access_token_claim=config.idp_access_token_claim,
    )


def challenge_service(*, codes: bool = True, sending: bool = False, signing: bool = False) -> ChallengeService:
    """A challenge service with the parts a function uses (each part is built once per instance)."""
    from otp_core.service import ChallengeService

    phone_check = None
    if sending:
        from otp_core.phone import check_phone_number

        phone_check = check_phone_number
    return ChallengeService(
        settings(),
        repository(),
        clock(),
        codes=code_book() if codes else None,
        sender=sms_sender() if sending else None,
        tokens=token_issuer() if signing else None,
        phone_check=phone_check,
        identities=identities(),
        deliveries=delivery_recorder() if sending else None,
    )


def mfa_service(*, sending: bool = False, tracking: bool = False) -> MfaService:
    """The adaptive MFA service; ``sending`` for client endpoints, ``tracking`` for track."""
    from otp_core.mfa import MfaService

    codes = code_book() if tracking else None
    return MfaService(
        settings(),
        identities(),
        clock(),
        challenges=challenge_service(sending=True) if sending else None,
        tokens=token_issuer(),
        # Track never verifies a token: building the verifier would fetch public keys it has no grant for.
        verifier=None if tracking else token_verifier(),
        rules=rules() if tracking else None,
        device_key=(lambda user, device: codes.subject_key("device", f"{user}\x00{device}")) if codes else None,
    )


def phone_verification_service() -> Any:
    from otp_core.phone_verification import PhoneVerificationService

    codes = code_book()
    return PhoneVerificationService(
        challenge_service(sending=True),
        identities(),
        lambda subject, phone: codes.subject_key("pointer", f"{subject}\x00{phone}"),
    )


def reset() -> None:
    """Forget every cached client, secret and service (tests change the environment between cases)."""
    get_settings.cache_clear()
    for factory in (
        client,
        _secrets_provider,
        code_book,
        clock,
        repository,
        identities,
        sms_sender,
        delivery_recorder,
        token_issuer,
        token_verifier,
        rules,
        idp_verifier,
    ):
        factory.cache_clear()
