"""Pydantic contracts of the HTTP API (camelCase on the wire, as ../shared/api.md fixes them)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator
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


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


IpAddress = Annotated[str, StringConstraints(strict=True, max_length=64), AfterValidator(_ip)]


class RequestModel(BaseModel):
    """Strict request body: camelCase names, no unknown fields, no type coercion."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

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
