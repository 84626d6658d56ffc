"""Wire models of users and authenticators (server)."""

from __future__ import annotations

from typing import Literal

from otp_core.models.base import PhoneNumber, RequestModel, ResponseModel


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
