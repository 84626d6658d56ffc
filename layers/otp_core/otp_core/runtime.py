"""The composition root: one typed factory per use case, each building exactly what its handler needs.

Clients, secrets and adapters are built once per cold start, on first use, so a function builds only what
its use case needs; the policy a request runs under comes from :func:`policy` (the stack parameters: the
app ``default``) and is passed to each call. Tests reset the caches with :func:`reset` after changing the
environment.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from otp_core.codes import CodeBook
from otp_core.errors import DependencyError
from otp_core.ports import SystemClock
from otp_core.settings import Policy, Settings, get_settings

if TYPE_CHECKING:
    from otp_core.adapters.dynamodb import DynamoChallengeRepository
    from otp_core.adapters.fraud_store import CachedFraudStore
    from otp_core.adapters.identity import DynamoIdentityRepository
    from otp_core.admin import FraudAdmin
    from otp_core.authenticators import AuthenticatorDirectory, AuthenticatorEnroller
    from otp_core.guard import SendGuard
    from otp_core.idp import IdpTokenVerifier
    from otp_core.mfa import ClientFlows, TokenValidator, Tracker
    from otp_core.phone_verification import PhoneVerificationService
    from otp_core.ports import SmsSender
    from otp_core.rules import RuleSet
    from otp_core.service import ChallengeRecords, ChallengeStarter, ChallengeVerifier, CodeChecker
    from otp_core.sms.circuit_store import DynamoCircuitStore
    from otp_core.sms.delivery import DeliveryRecorder
    from otp_core.sms.reports import DeliveryReports
    from otp_core.token_verify import TokenVerifier
    from otp_core.tokens import TokenIssuer

# Fail fast inside API Gateway's 29 s limit and the functions' timeout; the SDK retries throttling itself.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
SECRET_MAX_AGE_SECONDS = 300


def settings() -> Settings:
    return get_settings()


@cache
def policy() -> Policy:
    """The policy of the app ``default``: the stack parameters."""
    return settings().policy


@cache
def client(service: str) -> Any:
    return _client(service, _CLIENT_CONFIG)


def _client(service: str, config: Config) -> Any:
    # boto3 (with s3transfer and multiprocessing, ~50 ms) is imported with the first client, not at import.
    import boto3

    return boto3.client(service, config=config)  # type: ignore[call-overload]


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


# -- adapters ------------------------------------------------------------------------------------------------


@cache
def code_book() -> CodeBook:
    return CodeBook(secret(settings().code_secret_id).encode())


@cache
def clock() -> SystemClock:
    return SystemClock()


@cache
def repository() -> DynamoChallengeRepository:
    from otp_core.adapters.dynamodb import DynamoChallengeRepository

    return DynamoChallengeRepository(client("dynamodb"), settings().table_name)


@cache
def identities() -> DynamoIdentityRepository:
    from otp_core.adapters.identity import DynamoIdentityRepository

    return DynamoIdentityRepository(client("dynamodb"), settings().table_name)


@cache
def sms_sender() -> SmsSender:
    """The routed, failing-over SMS sender; vendor adapters are imported only for configured providers."""
    from otp_core.sms.factory import build_sender
    from otp_core.sms.secret import ProviderSecret

    config = settings()
    # One short attempt per provider: failover, not SDK retries, is the answer to a slow provider, and the
    # whole send must stay inside the function timeout.
    sns_config = Config(
        connect_timeout=2,
        read_timeout=config.sms_provider_timeout_seconds,
        retries={"mode": "standard", "max_attempts": 1},
    )

    def circuit_store() -> DynamoCircuitStore:
        from otp_core.sms.circuit_store import DynamoCircuitStore

        return DynamoCircuitStore(client("dynamodb"), config.table_name)

    return build_sender(
        config,
        load_credentials=ProviderSecret(config.sms_provider_secret_id, secret).document,
        sns_client=lambda: _client("sns", sns_config),
        circuit_store=circuit_store,
        clock=clock(),
    )


@cache
def delivery_recorder() -> DeliveryRecorder:
    from otp_core.sms.delivery import DeliveryRecorder

    return DeliveryRecorder(client("dynamodb"), settings().table_name)


@cache
def delivery_reports() -> DeliveryReports:
    """``POST /v1/delivery-status/{provider}``: verify a provider's callback, record its outcome."""
    from otp_core.sms.reports import DeliveryReports
    from otp_core.sms.secret import ProviderSecret

    config = settings()
    return DeliveryReports(
        ProviderSecret(config.sms_provider_secret_id, secret),
        delivery_recorder(),
        clock(),
        base_url=config.delivery_callback_base_url,
        tolerance_seconds=config.delivery_callback_tolerance_seconds,
    )


@cache
def token_issuer() -> TokenIssuer:
    from otp_core.adapters.kms import KmsSigner
    from otp_core.tokens import TokenIssuer

    config = settings()
    return TokenIssuer(
        KmsSigner(client("kms"), config.signing_key_id),
        issuer=config.token_issuer,
        audience=config.token_audience,
        clock=clock(),
    )


@cache
def token_verifier() -> TokenVerifier:
    """Checks this service's tokens against the public keys of the current and retired signing keys."""
    from otp_core.adapters.kms import KmsPublicKeys
    from otp_core.jwks import build_jwks
    from otp_core.token_verify import TokenVerifier

    config = settings()
    key_ids = dict.fromkeys((config.signing_key_id, *config.retired_signing_key_ids))
    jwks = build_jwks(KmsPublicKeys(client("kms")), key_ids)
    return TokenVerifier(jwks, issuer=config.token_issuer, audience=config.token_audience, clock=clock())


@cache
def rules() -> RuleSet:
    from otp_core.rules import load_rules

    return load_rules(settings().track_rules)


@cache
def idp_verifier() -> IdpTokenVerifier:
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


# -- use cases (one factory each) --------------------------------------------------------------------------


@cache
def challenge_starter() -> ChallengeStarter:
    """Create and resend (``POST /v1/challenges``, ``.../resend``) and every endpoint that sends."""
    from otp_core.phone import check_phone_number
    from otp_core.service import ChallengeStarter

    return ChallengeStarter(
        repository(),
        identities(),
        clock(),
        code_book(),
        sms_sender(),
        delivery_recorder(),
        check_phone_number,
        send_guard(),
    )


@cache
def fraud_store() -> CachedFraudStore:
    """Blocks and safe lists: one query of the partition at most every few seconds per function."""
    from otp_core.adapters.fraud_store import CachedFraudStore, DynamoFraudStore

    return CachedFraudStore(DynamoFraudStore(client("dynamodb"), settings().table_name))


@cache
def fraud_admin() -> FraudAdmin:
    """``/v1/admin/fraud/...``: blocks and the safe list. Reads and writes go to the table; a write also drops
    the cached view, which the local stack's functions share in one process, so there it applies at once."""
    from otp_core.admin import FraudAdmin

    return FraudAdmin(fraud_store(), clock())


@cache
def send_guard() -> SendGuard:
    """The fraud guard and spend guard of every sending use case (thresholds: the stack parameters)."""
    from otp_core.guard import SendGuard

    return SendGuard.from_settings(fraud_store(), settings())


@cache
def code_checker() -> CodeChecker:
    from otp_core.service import CodeChecker

    return CodeChecker(repository(), identities(), clock(), code_book())


@cache
def challenge_verifier() -> ChallengeVerifier:
    """``POST /v1/challenges/{id}/verify``."""
    from otp_core.service import ChallengeVerifier

    return ChallengeVerifier(code_checker(), token_issuer())


@cache
def challenge_records() -> ChallengeRecords:
    """``GET /v1/challenges/{id}`` and ``.../claim``: no code key, no SMS, no signing."""
    from otp_core.service import ChallengeRecords

    return ChallengeRecords(repository(), clock())


@cache
def tracker() -> Tracker:
    """``POST /v1/track``: it issues client tokens but never verifies one, so it fetches no public keys."""
    from otp_core.mfa import Tracker

    codes = code_book()
    return Tracker(
        identities(),
        clock(),
        token_issuer(),
        rules(),
        lambda user, device: codes.subject_key("device", f"{user}\x00{device}"),
    )


@cache
def token_validator() -> TokenValidator:
    """``POST /v1/validate``."""
    from otp_core.mfa import TokenValidator

    return TokenValidator(identities(), token_verifier())


@cache
def client_flows() -> ClientFlows:
    """``/v1/client/sms/*``."""
    from otp_core.mfa import ClientFlows

    return ClientFlows(identities(), clock(), challenge_starter(), code_checker(), token_issuer(), token_verifier())


@cache
def phone_verification() -> PhoneVerificationService:
    """``/v1/verification/sms/*``."""
    from otp_core.phone_verification import PhoneVerificationService

    codes = code_book()
    return PhoneVerificationService(
        challenge_starter(),
        code_checker(),
        identities(),
        lambda subject, phone: codes.subject_key("pointer", f"{subject}\x00{phone}"),
    )


@cache
def authenticator_enroller() -> AuthenticatorEnroller:
    """``POST /v1/users/{userId}/authenticators``."""
    from otp_core.authenticators import AuthenticatorEnroller
    from otp_core.phone import check_phone_number

    return AuthenticatorEnroller(identities(), clock(), check_phone_number)


@cache
def authenticator_directory() -> AuthenticatorDirectory:
    """List and delete authenticators."""
    from otp_core.authenticators import AuthenticatorDirectory

    return AuthenticatorDirectory(identities())


_FACTORIES = (
    policy,
    client,
    _secrets_provider,
    code_book,
    clock,
    repository,
    identities,
    sms_sender,
    delivery_recorder,
    delivery_reports,
    token_issuer,
    token_verifier,
    rules,
    idp_verifier,
    challenge_starter,
    code_checker,
    challenge_verifier,
    challenge_records,
    tracker,
    token_validator,
    client_flows,
    phone_verification,
    authenticator_enroller,
    authenticator_directory,
    fraud_store,
    send_guard,
    fraud_admin,
)


def reset() -> None:
    """Forget every cached client, secret and use case (tests change the environment between cases)."""
    get_settings.cache_clear()
    for factory in _FACTORIES:
        factory.cache_clear()
