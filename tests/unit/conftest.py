"""Unit tests run with the network switched off: the core must not need it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket

from otp_core.codes import CodeBook
from otp_core.phone import check_phone_number
from otp_core.service import ChallengeService
from otp_core.settings import Settings
from otp_core.tokens import TokenIssuer
from tests.fakes import FakeClock, FakeSender, FakeSigner, InMemoryRepository


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


class World:
    """A service wired to fakes, with handles on each fake."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = FakeClock()
        self.sender = FakeSender()
        self.signer = FakeSigner()
        self.repository = InMemoryRepository(settings)
        self.codes = CodeBook(b"k" * 32, settings.code_length)
        self.tokens = TokenIssuer(
            self.signer,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            ttl_seconds=settings.token_ttl_seconds,
            clock=self.clock,
        )
        self.service = ChallengeService(
            settings,
            self.repository,
            self.clock,
            codes=self.codes,
            sender=self.sender,
            tokens=self.tokens,
            phone_check=check_phone_number,
            identities=self.repository.identities,
        )


@pytest.fixture
def world() -> World:
    return World(Settings())


@pytest.fixture
def make_world():
    return lambda **overrides: World(Settings(**overrides))
