"""Wire models of phone verification for signed-in users."""

from __future__ import annotations

from typing import Literal

from otp_core.models.base import Code, Message, PhoneNumber, RequestModel, ResponseModel, SenderId


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
