"""Pydantic contracts of the HTTP API (camelCase on the wire, as the contract fixes them), one module per area.

Names are importable from here (``from otp_core.models import VerifyResult``) but each area's module is
loaded only when one of its names is first used: building a model class costs import time, and a function
needs the models of its own route only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otp_core.models.admin import (
        AppCreateRequest,
        AppList,
        AppPatchRequest,
        AppView,
        BlockList,
        BlockRequest,
        BlockView,
        KeyCreated,
        KeyCreateRequest,
        KeyList,
        KeyView,
        SafeList,
        SafeListRequest,
    )
    from otp_core.models.authenticators import (
        AuthenticatorList,
        AuthenticatorView,
        EnrollAuthenticatorRequest,
    )
    from otp_core.models.base import (
        RequestModel,
        ResponseModel,
    )
    from otp_core.models.challenges import (
        ChallengeSent,
        ChallengeView,
        ClaimChallengeRequest,
        ClaimResult,
        CreateChallengeRequest,
        VerifyChallengeRequest,
        VerifyResult,
    )
    from otp_core.models.mfa import (
        ClientChallengeSent,
        ClientEnrollRequest,
        ClientVerifyResult,
        TrackAttributes,
        TrackRequest,
        TrackResult,
        ValidateRequest,
        ValidateResult,
    )
    from otp_core.models.phone import (
        PhoneSendRequest,
        PhoneSent,
        PhoneValidateRequest,
        PhoneValidateResult,
    )

_AREAS = {
    "AppCreateRequest": "admin",
    "AppList": "admin",
    "AppPatchRequest": "admin",
    "AppView": "admin",
    "BlockList": "admin",
    "BlockRequest": "admin",
    "BlockView": "admin",
    "KeyCreateRequest": "admin",
    "KeyCreated": "admin",
    "KeyList": "admin",
    "KeyView": "admin",
    "SafeList": "admin",
    "SafeListRequest": "admin",
    "AuthenticatorList": "authenticators",
    "AuthenticatorView": "authenticators",
    "ChallengeSent": "challenges",
    "ChallengeView": "challenges",
    "ClaimChallengeRequest": "challenges",
    "ClaimResult": "challenges",
    "ClientChallengeSent": "mfa",
    "ClientEnrollRequest": "mfa",
    "ClientVerifyResult": "mfa",
    "CreateChallengeRequest": "challenges",
    "EnrollAuthenticatorRequest": "authenticators",
    "PhoneSendRequest": "phone",
    "PhoneSent": "phone",
    "PhoneValidateRequest": "phone",
    "PhoneValidateResult": "phone",
    "RequestModel": "base",
    "ResponseModel": "base",
    "TrackAttributes": "mfa",
    "TrackRequest": "mfa",
    "TrackResult": "mfa",
    "ValidateRequest": "mfa",
    "ValidateResult": "mfa",
    "VerifyChallengeRequest": "challenges",
    "VerifyResult": "challenges",
}
__all__ = [
    "AppCreateRequest",
    "AppList",
    "AppPatchRequest",
    "AppView",
    "AuthenticatorList",
    "AuthenticatorView",
    "BlockList",
    "BlockRequest",
    "BlockView",
    "ChallengeSent",
    "ChallengeView",
    "ClaimChallengeRequest",
    "ClaimResult",
    "ClientChallengeSent",
    "ClientEnrollRequest",
    "ClientVerifyResult",
    "CreateChallengeRequest",
    "EnrollAuthenticatorRequest",
    "KeyCreateRequest",
    "KeyCreated",
    "KeyList",
    "KeyView",
    "PhoneSendRequest",
    "PhoneSent",
    "PhoneValidateRequest",
    "PhoneValidateResult",
    "RequestModel",
    "ResponseModel",
    "SafeList",
    "SafeListRequest",
    "TrackAttributes",
    "TrackRequest",
    "TrackResult",
    "ValidateRequest",
    "ValidateResult",
    "VerifyChallengeRequest",
    "VerifyResult",
]


def __getattr__(name: str) -> Any:
    area = _AREAS.get(name)
    if area is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{area}"), name)
