"""Unit tests run with the network switched off: the core must not need it.

``World`` wires the real use cases to in-memory fakes, as ``otp_core.runtime`` wires them to AWS, and its
facades call them the way the handlers do (the world's policy passed in, the reply shaped by
``otp_core.replies``), so tests read like requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_socket import disable_socket, enable_socket

from otp_core import replies
from otp_core.authenticators import AuthenticatorDirectory, AuthenticatorEnroller
from otp_core.codes import CodeBook
from otp_core.guard import SendGuard
from otp_core.jwks import build_jwks
from otp_core.mfa import ClientFlows, TokenValidator, Tracker
from otp_core.models import (
    AuthenticatorList,
    AuthenticatorView,
    ChallengeSent,
    ChallengeView,
    ClaimResult,
    ClientChallengeSent,
    ClientVerifyResult,
    CreateChallengeRequest,
    PhoneSent,
    PhoneValidateResult,
    TrackRequest,
    TrackResult,
    ValidateResult,
    VerifyResult,
)
from otp_core.phone import check_phone_number
from otp_core.phone_verification import PhoneVerificationService
from otp_core.records import DEFAULT_APP, Challenge
from otp_core.rules import RuleSet, load_rules
from otp_core.service import (
    ChallengeRecords,
    ChallengeStarter,
    ChallengeVerifier,
    CodeCheck,
    CodeChecker,
    NewChallenge,
)
from otp_core.settings import Settings
from otp_core.token_verify import TokenVerifier
from otp_core.tokens import TokenIssuer
from tests.fakes import FakeClock, FakeSender, FakeSigner, InMemoryFraudStore, InMemoryRepository


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


class Challenges:
    """The challenge endpoints as handlers call them."""

    def __init__(self, world: World) -> None:
        self._world = world

    def create(self, request: CreateChallengeRequest) -> ChallengeSent:
        created = self._world.starter.create(
            self._world.policy,
            action=request.action,
            phone_number=request.phone_number,
            user_id=request.user_id,
            scope=request.scope,
            message=request.message,
            sender_id=request.sender_id,
            locale=request.locale,
            ip_address=request.ip_address,
        )
        return replies.challenge_sent(created)

    def start(self, phone_number: str, action: str, **fields: Any) -> tuple[ChallengeSent, Challenge]:
        challenge = self._world.starter.start(NewChallenge(phone_number, action, **fields), self._world.policy)
        return replies.challenge_sent(challenge), challenge

    def verify(self, challenge_id: str, code: str) -> VerifyResult:
        return replies.verify_result(self._world.verifier.verify(challenge_id, code, self._world.policy))

    def check_code(self, challenge_id: str, code: str, **fields: Any) -> CodeCheck:
        return self._world.checker.check_code(challenge_id, code, self._world.policy, **fields)

    def resend(self, challenge_id: str, *, user_id: str | None = None) -> ChallengeSent:
        return replies.challenge_sent(self._world.starter.resend(challenge_id, self._world.policy, user_id=user_id))

    def claim(self, challenge_id: str, user_id: str) -> ClaimResult:
        return replies.claim_result(self._world.records.claim(challenge_id, user_id), user_id)

    def get(self, challenge_id: str) -> ChallengeView:
        return replies.challenge_view(self._world.records.get(challenge_id), self._world.clock.now())


class Client:
    """Track, validate and the client endpoints as handlers call them."""

    def __init__(self, world: World) -> None:
        self._world = world

    @property
    def _rules(self) -> RuleSet:
        rules = self._world.tracker._rules
        assert isinstance(rules, RuleSet)  # the world's tracker has fixed rules
        return rules

    @_rules.setter
    def _rules(self, rules: RuleSet) -> None:
        self._world.tracker._rules = rules

    def track(self, request: TrackRequest) -> TrackResult:
        attributes = request.attributes
        tracked = self._world.tracker.track(
            self._world.policy,
            user_id=request.user_id,
            action=request.action,
            attributes=attributes.model_dump(by_alias=True, exclude_none=True),
            device_id=attributes.device_id,
            phone_number=attributes.phone_number,
            redirect_url=attributes.redirect_url,
        )
        return replies.track_result(tracked)

    def validate(self, token: str, action: str | None) -> ValidateResult:
        return replies.validate_result(self._world.validator.validate(token, action, self._world.policy))

    def authenticate(self, authorization: str | None) -> dict[str, Any]:
        return self._world.client.authenticate(authorization, self._world.policy)

    def client_enroll(self, claims: Any, phone_number: str, ip_address: str | None = None) -> ClientChallengeSent:
        sent = self._world.client.enroll(claims, phone_number, self._world.policy, ip_address)
        return replies.client_challenge_sent(sent)

    def client_challenge(self, claims: Any, ip_address: str | None = None) -> ClientChallengeSent:
        return replies.client_challenge_sent(self._world.client.challenge(claims, self._world.policy, ip_address))

    def client_verify(self, claims: Any, code: str) -> ClientVerifyResult:
        return replies.client_verify_result(self._world.client.verify(claims, code, self._world.policy))


class Authenticators:
    def __init__(self, world: World) -> None:
        self._world = world

    def enroll(self, user_id: str, phone_number: str) -> AuthenticatorView:
        return replies.authenticator_view(self._world.enroller.enroll(user_id, phone_number, self._world.policy))

    def list(self, user_id: str) -> AuthenticatorList:
        return replies.authenticator_list(self._world.directory.list(user_id))

    def delete(self, user_id: str, authenticator_id: str) -> None:
        self._world.directory.delete(user_id, authenticator_id)


class PhoneVerification:
    def __init__(self, world: World) -> None:
        self._world = world

    def send(
        self,
        subject: str,
        phone_number: str,
        message: str | None,
        sender_id: str | None,
        ip_address: str | None = None,
    ) -> PhoneSent:
        sent = self._world.phone_verification.send(
            subject, phone_number, self._world.policy, message=message, sender_id=sender_id, ip_address=ip_address
        )
        return replies.phone_sent(sent)

    def validate(self, subject: str, phone_number: str, passcode: str) -> PhoneValidateResult:
        check = self._world.phone_verification.validate(subject, phone_number, passcode, self._world.policy)
        return replies.phone_validate_result(check)


class World:
    """The use cases wired to fakes, with handles on each fake and facades for the tests."""

    def __init__(self, settings: Settings, rules: str = "") -> None:
        self.settings = settings
        self.policy = settings.policy
        self.clock = FakeClock()
        self.sender = FakeSender()
        self.test_sender = FakeSender(provider="test")
        self.signer = FakeSigner()
        self.repository = InMemoryRepository()
        self.identities = self.repository.identities
        self.fraud = InMemoryFraudStore(self.repository)
        self.guard = SendGuard.from_settings(self.fraud, settings)
        self.codes = CodeBook(b"k" * 32)
        self.tokens = TokenIssuer(self.signer, issuer=settings.token_issuer, app_id=DEFAULT_APP, clock=self.clock)
        jwks = build_jwks(self.signer, [self.signer.key_id])

        def verifier(audience: str) -> TokenVerifier:
            return TokenVerifier(
                jwks, issuer=settings.token_issuer, app_id=DEFAULT_APP, audience=audience, clock=self.clock
            )

        self.verifiers = verifier
        self.token_verifier = verifier(settings.token_audience)
        self.starter = ChallengeStarter(
            self.repository,
            self.identities,
            self.clock,
            self.codes,
            self.sender,
            check_phone_number,
            self.guard,
            test_sender=self.test_sender,
        )
        self.checker = CodeChecker(self.repository, self.identities, self.clock, self.codes)
        self.verifier = ChallengeVerifier(self.checker, self.tokens)
        self.records = ChallengeRecords(self.repository, self.clock)
        self.tracker = Tracker(
            self.identities, self.clock, self.tokens, load_rules(rules), lambda user, device: f"{user}/{device}"
        )
        self.validator = TokenValidator(self.identities, self.verifiers)
        self.client = ClientFlows(self.identities, self.clock, self.starter, self.checker, self.tokens, self.verifiers)
        self.phone_verification = PhoneVerificationService(
            self.starter, self.checker, self.identities, lambda sub, phone: f"{sub}/{phone}"
        )
        self.enroller = AuthenticatorEnroller(self.identities, self.clock, check_phone_number)
        self.directory = AuthenticatorDirectory(self.identities)
        self.service = Challenges(self)


@pytest.fixture
def world() -> World:
    return World(Settings())


@pytest.fixture
def make_world():
    return lambda **overrides: World(Settings(**overrides))
