"""Wire models of adaptive MFA (track, validate) and the client endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from otp_core.models.base import Action, IpAddress, PhoneNumber, RequestModel, ResponseModel, UserId

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
