"""Pydantic contracts of the HTTP API (camelCase on the wire, as ../shared/api.md fixes them)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

Action = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
UserId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
PhoneNumber = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=32)]


def _has_letter(value: str) -> str:
    if not any(char.isalpha() for char in value):
        raise ValueError("senderId must contain at least one letter")
    return value


SenderId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9 ]{1,11}$"), AfterValidator(_has_letter)]
Locale = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,4}$")]
Message = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=640)]
Code = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{4,10}$")]
Scope = Literal["add:authenticators", "update:authenticators"]


_NOT_AN_ADDRESS = "must be an IPv4 or IPv6 address (no zone ID, no prefix length)"


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(_NOT_AN_ADDRESS) from None  # ipaddress's own message repeats the input
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError(_NOT_AN_ADDRESS)
    return str(address)


IpAddress = Annotated[str, StringConstraints(strict=True, max_length=64), AfterValidator(_ip)]


class RequestModel(BaseModel):
    """Strict request body: camelCase names, no unknown fields, no type coercion."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True, defer_build=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)

    def to_json(self) -> dict[str, object]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class CreateChallengeRequest(RequestModel):
    phone_number: PhoneNumber | None = None
    action: Action
    user_id: UserId | None = None
    scope: Scope | None = None
    message: Message | None = None
    sender_id: SenderId | None = None
    locale: Locale | None = None
    ip_address: IpAddress | None = None

    @model_validator(mode="after")
    def _scope_needs_user(self) -> CreateChallengeRequest:
        if self.scope is not None and self.user_id is None:
            raise ValueError("userId is required with scope")
        return self


class VerifyChallengeRequest(RequestModel):
    code: Code


class ClaimChallengeRequest(RequestModel):
    user_id: UserId


class ChallengeSent(ResponseModel):
    challenge_id: str
    verification_method: Literal["SMS"] = "SMS"
    phone_mask: str
    expires_at: str
    resend_available_at: str
    attempts_remaining: int


class VerifyResult(ResponseModel):
    is_verified: bool
    token: str | None = None
    failure_reason: Literal["CODE_INVALID_OR_EXPIRED", "MAX_ATTEMPTS_EXCEEDED"] | None = None
    attempts_remaining: int
    user_id: str | None = None
    phone_number: str | None = None
    action: str | None = None


class ClaimResult(ResponseModel):
    challenge_id: str
    user_id: str
    phone_number: str
    action: str


class ChallengeView(ResponseModel):
    challenge_id: str
    state: str
    action: str
    user_id: str | None
    phone_mask: str
    created_at: str
    expires_at: str
    attempts_remaining: int

    def to_json(self) -> dict[str, object]:
        # userId is part of this view even when unknown: clients read it as null.
        return self.model_dump(by_alias=True, mode="json")


# -- adaptive MFA, users and client endpoints ---------------------------------------------------------------

CustomValue = Annotated[str, StringConstraints(max_length=512)] | int | float | bool | None
Token = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=8192)]


class TrackAttributes(RequestModel):
    phone_number: PhoneNumber | None = None
    ip_address: IpAddress | None = None
    user_agent: Annotated[str, StringConstraints(strict=True, max_length=1024)] | None = None
    device_id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)] | None = None
    redirect_url: Annotated[str, StringConstraints(strict=True, max_length=2048)] | None = None
    custom: (
        Annotated[dict[Annotated[str, StringConstraints(max_length=64)], CustomValue], Field(max_length=50)] | None
    ) = None


class TrackRequest(RequestModel):
    user_id: UserId
    action: Action
    attributes: TrackAttributes = TrackAttributes()


class TrackResult(ResponseModel):
    state: Literal["ALLOW", "CHALLENGE_REQUIRED", "BLOCK"]
    token: str
    is_enrolled: bool
    enrolled_verification_methods: list[Literal["SMS"]]
    url: str | None = None


class ValidateRequest(RequestModel):
    token: Token
    action: Action | None = None


class ValidateResult(ResponseModel):
    is_valid: bool
    state: str | None = None
    user_id: str | None = None
    action: str | None = None
    challenge_id: str | None = None
    verification_method: Literal["SMS"] | None = None
    phone_number: str | None = None
    failure_reason: (
        Literal["TOKEN_INVALID_OR_EXPIRED", "TOKEN_ALREADY_USED", "ACTION_MISMATCH", "CHALLENGE_NOT_COMPLETED"] | None
    ) = None


class EnrollAuthenticatorRequest(RequestModel):
    verification_method: Literal["SMS"]
    phone_number: PhoneNumber


class AuthenticatorView(ResponseModel):
    authenticator_id: str
    verification_method: Literal["SMS"] = "SMS"
    phone_mask: str
    verified_at: str
    created_at: str


class AuthenticatorList(ResponseModel):
    authenticators: list[AuthenticatorView]


class ClientEnrollRequest(RequestModel):
    phone_number: PhoneNumber


class ClientChallengeSent(ResponseModel):
    challenge_id: str
    phone_mask: str
    expires_at: str
    resend_available_at: str


class ClientVerifyResult(ResponseModel):
    is_verified: bool
    token: str | None = None
    failure_reason: Literal["CODE_INVALID_OR_EXPIRED", "MAX_ATTEMPTS_EXCEEDED"] | None = None
    attempts_remaining: int


class PhoneSendRequest(RequestModel):
    phone_number: PhoneNumber
    message: Message | None = None
    sender_id: SenderId | None = None


class PhoneSent(ResponseModel):
    phone_mask: str
    expires_at: str
    resend_available_at: str


class PhoneValidateRequest(RequestModel):
    phone_number: PhoneNumber
    passcode: Code


class PhoneValidateResult(ResponseModel):
    verified: bool
    enrolled: bool | None = None
    failure_reason: Literal["CODE_INVALID_OR_EXPIRED", "MAX_ATTEMPTS_EXCEEDED"] | None = None
    attempts_remaining: int | None = None
