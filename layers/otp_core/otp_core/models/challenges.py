"""Wire models of the Challenges section (server)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from otp_core.models.base import (
    Action,
    Code,
    IpAddress,
    Locale,
    Message,
    PhoneNumber,
    RequestModel,
    ResponseModel,
    Scope,
    SenderId,
    UserId,
)


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
