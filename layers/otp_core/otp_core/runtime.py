"""The composition root: one typed factory per use case, each building exactly what its handler needs.

Clients, secrets and adapters are built once per cold start, on first use, so a function builds only what
its use case needs. A deployment serves several apps (otp_core.apps): the use cases are built per app (their
repositories key every item by it), and the policy a request runs under comes from :func:`policy` (the stack
parameters with the app's settings over them, cached 30 seconds) and is passed to each call. Tests reset the
caches with :func:`reset` after changing the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from otp_core.codes import CodeBook
from otp_core.errors import DependencyError
from otp_core.ports import SystemClock
from otp_core.records import DEFAULT_APP, OutgoingSms
from otp_core.settings import Policy, Settings, get_settings

if TYPE_CHECKING:
    from otp_core.adapters.app_store import DynamoAppStore
    from otp_core.adapters.dynamodb import DynamoChallengeRepository
    from otp_core.adapters.fraud_store import CachedFraudStore
    from otp_core.adapters.identity import DynamoIdentityRepository
    from otp_core.admin import FraudAdmin
    from otp_core.app_admin import AppAdmin, AppDirectory, KeyAuthority
    from otp_core.authenticators import AuthenticatorDirectory, AuthenticatorEnroller
    from otp_core.guard import SendGuard
    from otp_core.http import Event
    from otp_core.idp import IdpTokenVerifier
    from otp_core.mfa import ClientFlows, TokenValidator, Tracker
    from otp_core.phone_verification import PhoneVerificationService
    from otp_core.ports import ConversionFeedback, SmsSender
    from otp_core.rules import RuleSet
    from otp_core.service import ChallengeRecords, ChallengeStarter, ChallengeVerifier, CodeChecker
    from otp_core.sms.circuit_store import DynamoCircuitStore
    from otp_core.sms.delivery import DeliveryRecorder
    from otp_core.sms.reports import DeliveryReports, EumReceipts
    from otp_core.sms.test_numbers import TestNumberSender
    from otp_core.token_verify import TokenVerifier
    from otp_core.tokens import TokenIssuer

# Fail fast inside API Gateway's 29 s limit and the functions' timeout; the SDK retries throttling itself.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
SECRET_MAX_AGE_SECONDS = 300


def settings() -> Settings:
    return get_settings()


@cache
def client(service: str) -> Any:
    return _client(service, _CLIENT_CONFIG)


def _client(service: str, config: Config) -> Any:
    # boto3 (with s3transfer and multiprocessing, ~50 ms) is imported with the first client, not at import.
    import boto3

    from otp_core.observability import redact_aws_errors

    return redact_aws_errors(boto3.client(service, config=config))  # type: ignore[call-overload]


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


# -- apps ------------------------------------------------------------------------------------------------


@cache
def app_store() -> DynamoAppStore:
    from otp_core.adapters.app_store import DynamoAppStore

    return DynamoAppStore(client("dynamodb"), settings().table_name)


@cache
def apps() -> AppDirectory:
    """Each app's policy, cached 30 seconds per function (the only read the apps add to a request)."""
    from otp_core.app_admin import AppDirectory

    config = settings()
    return AppDirectory(app_store(), config.policy, allow_test_numbers=config.allow_test_numbers)


def policy(app_id: str = DEFAULT_APP) -> Policy:
    """The policy requests of ``app_id`` run under: the stack parameters with the app's settings over them.

    Raises
    ------
    UnauthorizedError
        No such app, or it was deleted.
    """
    return apps().policy(app_id)


@cache
def key_authority() -> KeyAuthority:
    """The authorizer's view of keys: the admin key, and each app's API keys by digest."""
    from otp_core.app_admin import KeyAuthority

    config = settings()
    return KeyAuthority(
        app_store(),
        clock(),
        config.policy,
        stack_secret=lambda: secret(config.api_key_secret_id),
        admin_secret=lambda: secret(config.admin_key_secret_id),
    )


@cache
def app_admin() -> AppAdmin:
    """``/v1/admin/apps``."""
    import phonenumbers

    from otp_core.app_admin import AppAdmin
    from otp_core.phone import check_phone_number
    from otp_core.sms.factory import stack_providers
    from otp_core.sms.routing import parse_country_routes

    config = settings()
    return AppAdmin(
        app_store(),
        apps(),
        clock(),
        allow_test_numbers=config.allow_test_numbers,
        providers=stack_providers(config),
        phone_check=check_phone_number,
        parse_routes=parse_country_routes,
        stack_secret=lambda: secret(config.api_key_secret_id),
        regions=phonenumbers.SUPPORTED_REGIONS,
    )


# -- adapters ------------------------------------------------------------------------------------------------

# Per-app factories keep at most this many apps' objects (each is a handful of small objects).
_APPS = 256


@cache
def code_book() -> CodeBook:
    return CodeBook(secret(settings().code_secret_id).encode())


@cache
def clock() -> SystemClock:
    return SystemClock()


@lru_cache(maxsize=_APPS)
def repository(app_id: str = DEFAULT_APP) -> DynamoChallengeRepository:
    from otp_core.adapters.dynamodb import DynamoChallengeRepository

    return DynamoChallengeRepository(client("dynamodb"), settings().table_name, app_id=app_id)


@lru_cache(maxsize=_APPS)
def identities(app_id: str = DEFAULT_APP) -> DynamoIdentityRepository:
    from otp_core.adapters.identity import DynamoIdentityRepository

    return DynamoIdentityRepository(client("dynamodb"), settings().table_name, app_id=app_id)


def sms_sender(app_policy: Policy | None = None) -> SmsSender:
    """The routed, failing-over SMS sender of an app's routes (the stack's when no policy is given)."""
    chosen = app_policy or settings().policy
    return _routed_sender(tuple(chosen.sms_providers), chosen.sms_country_routes)


@lru_cache(maxsize=_APPS)
def _routed_sender(providers: tuple[str, ...], routes: str) -> SmsSender:
    """One sender per distinct routing; vendor adapters are imported only for routed providers."""
    from otp_core.sms.factory import build_sender
    from otp_core.sms.secret import ProviderSecret

    config = settings().model_copy(update={"sms_providers": providers, "sms_country_routes": routes})
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
        eum_client=lambda: eum_client(config.sms_provider_timeout_seconds),
        circuit_store=circuit_store,
        clock=clock(),
    )


@lru_cache(maxsize=4)
def eum_client(timeout: float) -> Any:
    """The End User Messaging SMS client (``pinpoint-sms-voice-v2``): one attempt of at most ``timeout``
    seconds (failover is the retry), at the endpoint override of the local stack and tests if there is one."""
    import boto3

    from otp_core.observability import redact_aws_errors
    from otp_core.sms.factory import parse_endpoints
    from otp_core.sms.vendors.eum import eum_client_config

    endpoint = parse_endpoints(settings().sms_provider_endpoints).get("eum")
    client = boto3.client(  # type: ignore[call-overload]
        "pinpoint-sms-voice-v2", config=eum_client_config(timeout), endpoint_url=endpoint
    )
    return redact_aws_errors(client)


@cache
def conversion_feedback() -> ConversionFeedback | None:
    """Feedback to the providers with a feedback API that this stack routes to (None: none of them)."""
    from otp_core.sms.factory import parse_endpoints, stack_providers
    from otp_core.sms.feedback import FEEDBACK_TIMEOUT_SECONDS, ProviderFeedback

    config = settings()
    held = set(stack_providers(config))
    factories: dict[str, Callable[[], Callable[[str], bool]]] = {}
    if "eum" in held:

        def eum() -> Callable[[str], bool]:
            from otp_core.sms.vendors.eum import EumConfig, EumSmsSender

            sender = EumSmsSender(eum_client(FEEDBACK_TIMEOUT_SECONDS), EumConfig.from_settings(config, clock()))
            return sender.feedback

        factories["eum"] = eum
    if "twilio" in held:

        def twilio() -> Callable[[str], bool]:
            from otp_core.sms.secret import ProviderSecret
            from otp_core.sms.vendor import VendorConfig
            from otp_core.sms.vendors.twilio import TwilioSender

            vendor = VendorConfig(
                load_credentials=ProviderSecret(config.sms_provider_secret_id, secret).document,
                timeout=FEEDBACK_TIMEOUT_SECONDS,
                base_url=parse_endpoints(config.sms_provider_endpoints).get("twilio"),
                clock=clock(),
            )
            return TwilioSender(vendor).feedback

        factories["twilio"] = twilio
    return ProviderFeedback(factories) if factories else None


# The local stack serves its own SNS signing certificate; a deployed stack trusts only SNS's hosts.
_sns_certificates: list[Any] = [None]


def use_local_sns_certificates(pattern: Any) -> None:
    """Trust SNS signing certificates at URLs matching ``pattern`` (the local stack's); never in a deployed stack."""
    _sns_certificates[0] = pattern
    eum_receipts.cache_clear()


@cache
def eum_receipts() -> EumReceipts:
    """End User Messaging's delivery events from its SNS topic (DeliveryEventsFunction)."""
    from otp_core.sms.reports import EumReceipts
    from otp_core.sms.sns_events import EumEventReader, SnsSignatureVerifier

    config = settings()
    verifier = SnsSignatureVerifier(
        topic_arns=[config.eum_events_topic_arn], clock=clock(), trusted_cert_url=_sns_certificates[0]
    )
    return EumReceipts(verifier, EumEventReader(), delivery_reports())


# Where sends to test numbers go: nowhere in a deployed stack; the local stack points this at its outbox.
_test_number_sink: list[Callable[[OutgoingSms], object] | None] = [None]


def use_test_number_sink(sink: Callable[[OutgoingSms], object] | None) -> None:
    """Show sends to test numbers somewhere (the local stack's outbox); never set in a deployed stack."""
    _test_number_sink[0] = sink


def test_sender() -> TestNumberSender:
    from otp_core.sms.test_numbers import TestNumberSender

    return TestNumberSender(_test_number_sink[0])


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
        feedback=conversion_feedback(),
    )


@lru_cache(maxsize=_APPS)
def token_issuer(app_id: str = DEFAULT_APP) -> TokenIssuer:
    from otp_core.adapters.kms import KmsSigner
    from otp_core.tokens import TokenIssuer

    config = settings()
    return TokenIssuer(
        KmsSigner(client("kms"), config.signing_key_id), issuer=config.token_issuer, app_id=app_id, clock=clock()
    )


@cache
def public_keys() -> dict[str, Any]:
    """The JWKS of the current and retired signing keys."""
    from otp_core.adapters.kms import KmsPublicKeys
    from otp_core.jwks import build_jwks

    config = settings()
    key_ids = dict.fromkeys((config.signing_key_id, *config.retired_signing_key_ids))
    return build_jwks(KmsPublicKeys(client("kms")), key_ids)


@lru_cache(maxsize=_APPS)
def token_verifier(app_id: str | None = DEFAULT_APP, audience: str | None = "") -> TokenVerifier:
    """Checks this service's tokens of one app (its ``app`` claim and audience) against the public keys; an
    empty audience is the stack's, and ``(None, None)`` checks only what every app's tokens share."""
    from otp_core.token_verify import TokenVerifier

    config = settings()
    expected = config.token_audience if audience == "" else audience
    return TokenVerifier(public_keys(), issuer=config.token_issuer, app_id=app_id, audience=expected, clock=clock())


@lru_cache(maxsize=_APPS)
def rules(text: str | None = None) -> RuleSet:
    from otp_core.rules import load_rules

    return load_rules(settings().policy.track_rules if text is None else text)


@lru_cache(maxsize=_APPS)
def idp_verifier(issuer: str, audience: str, jwks_url: str) -> IdpTokenVerifier:
    """The token verifier of one app's identity provider (its ``idpIssuer``, ``idpAudience``, ``idpJwksUrl``)."""
    from otp_core.idp import IdpTokenVerifier

    if not (issuer and audience and jwks_url):
        raise DependencyError("phone verification for signed-in users is not configured")
    return IdpTokenVerifier(issuer, audience, jwks_url, access_token_claim=settings().idp_access_token_claim)


# -- use cases (one factory each, per app) -------------------------------------------------------------------


@lru_cache(maxsize=_APPS)
def challenge_starter(app_id: str = DEFAULT_APP) -> ChallengeStarter:
    """Create and resend (``POST /v1/challenges``, ``.../resend``) and every endpoint that sends."""
    from otp_core.phone import check_phone_number
    from otp_core.service import ChallengeStarter

    return ChallengeStarter(
        repository(app_id),
        identities(app_id),
        clock(),
        code_book(),
        sms_sender,
        check_phone_number,
        send_guard(),
        test_sender=test_sender(),
        app_id=app_id,
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

    return FraudAdmin(fraud_store(), clock(), apps())


@cache
def send_guard() -> SendGuard:
    """The fraud guard and spend guard of every sending use case (thresholds: the stack parameters)."""
    from otp_core.guard import SendGuard

    return SendGuard.from_settings(fraud_store(), settings())


@lru_cache(maxsize=_APPS)
def code_checker(app_id: str = DEFAULT_APP) -> CodeChecker:
    from otp_core.service import CodeChecker

    return CodeChecker(repository(app_id), identities(app_id), clock(), code_book(), conversion_feedback())


@lru_cache(maxsize=_APPS)
def challenge_verifier(app_id: str = DEFAULT_APP) -> ChallengeVerifier:
    """``POST /v1/challenges/{id}/verify``."""
    from otp_core.service import ChallengeVerifier

    return ChallengeVerifier(code_checker(app_id), token_issuer(app_id))


@lru_cache(maxsize=_APPS)
def challenge_records(app_id: str = DEFAULT_APP) -> ChallengeRecords:
    """``GET /v1/challenges/{id}`` and ``.../claim``: no code key, no SMS, no signing."""
    from otp_core.service import ChallengeRecords

    return ChallengeRecords(repository(app_id), clock())


@lru_cache(maxsize=_APPS)
def tracker(app_id: str = DEFAULT_APP) -> Tracker:
    """``POST /v1/track``: it issues client tokens but never verifies one, so it fetches no public keys."""
    from otp_core.mfa import Tracker

    codes = code_book()
    return Tracker(
        identities(app_id),
        clock(),
        token_issuer(app_id),
        lambda app_policy: rules(app_policy.track_rules),
        lambda user, device: codes.subject_key("device", f"{user}\x00{device}"),
    )


def _verifiers(app_id: str) -> Callable[[str], TokenVerifier]:
    return lambda audience: token_verifier(app_id, audience)


@lru_cache(maxsize=_APPS)
def token_validator(app_id: str = DEFAULT_APP) -> TokenValidator:
    """``POST /v1/validate``."""
    from otp_core.mfa import TokenValidator

    return TokenValidator(identities(app_id), _verifiers(app_id))


def client_app(authorization: str | None) -> tuple[str, Policy]:
    """The app a client token names, and its policy; the token is then verified as that app's (its ``app``
    claim picks the app, and a token that lies about it fails that app's audience and signature checks).

    Raises
    ------
    UnauthorizedError
        No token, no app claim, or the app does not exist (any more).
    """
    from otp_core.apps import APP_ID
    from otp_core.errors import UnauthorizedError
    from otp_core.mfa import bearer_token
    from otp_core.tokens import CLIENT_TOKEN_TYPE

    # Signature, issuer, type and times first (every app's tokens share them): a forged app claim costs no read.
    claims = token_verifier(None, None).verify(bearer_token(authorization), token_type=CLIENT_TOKEN_TYPE)
    app_id = claims["app"]
    if not APP_ID.fullmatch(app_id):
        raise UnauthorizedError("the token is invalid or expired")
    return app_id, policy(app_id)


def client_origins(event: Event) -> frozenset[str]:
    """The origins that may read the answer to a client route's request: those of the app its verified token
    names, else (no valid token: the answer names no app) those of every live app."""
    from otp_core.errors import OtpError

    try:
        _, app_policy = client_app(event.headers.get("Authorization"))
    except OtpError:
        return apps().allowed_origins()
    return frozenset(app_policy.allowed_origins)


def signed_in_user(authorization: str | None) -> tuple[str, Policy, str]:
    """The app whose identity provider issued a signed-in user's access token, its policy, and the user (the
    token's ``sub``, verified against that app's ``idpIssuer``, ``idpAudience`` and ``idpJwksUrl``).

    Raises
    ------
    UnauthorizedError
        No token, or no app's identity provider issued it for its audience, or it fails that provider's checks.
    DependencyError
        No app has an identity provider configured, or its JWKS could not be fetched.
    """
    from otp_core.errors import UnauthorizedError
    from otp_core.idp import unverified_issuer_and_audiences

    if not any(app_policy.idp_issuer for _, app_policy in apps().apps()):
        raise DependencyError("phone verification for signed-in users is not configured")
    issuer, audiences = unverified_issuer_and_audiences(authorization)
    found = next(filter(None, (apps().app_of_idp(issuer, audience) for audience in audiences)), None)
    if found is None:
        raise UnauthorizedError("the access token is invalid or expired")
    app_id, app_policy = found
    verifier = idp_verifier(app_policy.idp_issuer, app_policy.idp_audience, app_policy.idp_jwks_url)
    return app_id, app_policy, verifier.subject(authorization)


@lru_cache(maxsize=_APPS)
def client_flows(app_id: str = DEFAULT_APP) -> ClientFlows:
    """``/v1/client/sms/*``."""
    from otp_core.mfa import ClientFlows

    return ClientFlows(
        identities(app_id),
        clock(),
        challenge_starter(app_id),
        code_checker(app_id),
        token_issuer(app_id),
        _verifiers(app_id),
    )


@lru_cache(maxsize=_APPS)
def phone_verification(app_id: str = DEFAULT_APP) -> PhoneVerificationService:
    """``/v1/verification/sms/*``."""
    from otp_core.phone_verification import PhoneVerificationService

    codes = code_book()
    return PhoneVerificationService(
        challenge_starter(app_id),
        code_checker(app_id),
        identities(app_id),
        lambda subject, phone: codes.subject_key("pointer", f"{subject}\x00{phone}"),
    )


@lru_cache(maxsize=_APPS)
def authenticator_enroller(app_id: str = DEFAULT_APP) -> AuthenticatorEnroller:
    """``POST /v1/users/{userId}/authenticators``."""
    from otp_core.authenticators import AuthenticatorEnroller
    from otp_core.phone import check_phone_number

    return AuthenticatorEnroller(identities(app_id), clock(), check_phone_number)


@lru_cache(maxsize=_APPS)
def authenticator_directory(app_id: str = DEFAULT_APP) -> AuthenticatorDirectory:
    """List and delete authenticators."""
    from otp_core.authenticators import AuthenticatorDirectory

    return AuthenticatorDirectory(identities(app_id))


_FACTORIES = (
    app_store,
    apps,
    key_authority,
    app_admin,
    _routed_sender,
    public_keys,
    client,
    _secrets_provider,
    code_book,
    clock,
    repository,
    identities,
    delivery_recorder,
    delivery_reports,
    eum_client,
    eum_receipts,
    conversion_feedback,
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
