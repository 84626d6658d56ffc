"""Shaping the use cases' domain results into the contract's response models (handlers call these).

One function per answer shape, so a field is computed in one place: the mask of a number, RFC 3339 times,
the attempts a caller may still use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otp_core.observability import mask_phone
from otp_core.records import Authenticator, Challenge, ChallengeState
from otp_core.timefmt import rfc3339

if TYPE_CHECKING:  # the use cases' result types; importing them here would load every use case's module
    from otp_core.apps import ApiKey, AppRecord, NewKey
    from otp_core.fraud import Block
    from otp_core.mfa import ClientVerification, Tracked, Validation
    from otp_core.models import (
        AppList,
        AppView,
        AuthenticatorList,
        AuthenticatorView,
        BlockList,
        BlockView,
        ChallengeSent,
        ChallengeView,
        ClaimResult,
        ClientChallengeSent,
        ClientVerifyResult,
        KeyCreated,
        KeyList,
        KeyView,
        PhoneSent,
        PhoneValidateResult,
        SafeList,
        TrackResult,
        ValidateResult,
        VerifyResult,
    )
    from otp_core.service import CodeCheck, Verification


def challenge_sent(challenge: Challenge) -> ChallengeSent:
    """The answer of create and resend."""
    from otp_core.models import ChallengeSent  # only this answer's area is loaded

    return ChallengeSent(
        challenge_id=challenge.challenge_id,
        phone_mask=mask_phone(challenge.phone_number),
        expires_at=rfc3339(challenge.expires_at),
        resend_available_at=rfc3339(challenge.next_resend_at),
        attempts_remaining=challenge.attempts_remaining,
    )


def client_challenge_sent(challenge: Challenge) -> ClientChallengeSent:
    """The answer of the client endpoints that send: no server-side fields."""
    from otp_core.models import ClientChallengeSent  # only this answer's area is loaded

    return ClientChallengeSent(
        challenge_id=challenge.challenge_id,
        phone_mask=mask_phone(challenge.phone_number),
        expires_at=rfc3339(challenge.expires_at),
        resend_available_at=rfc3339(challenge.next_resend_at),
    )


def phone_sent(challenge: Challenge) -> PhoneSent:
    """The signed-in send's answer: no challenge ID, the user's challenge is found by number, never by ID."""
    from otp_core.models import PhoneSent  # only this answer's area is loaded

    return PhoneSent(
        phone_mask=mask_phone(challenge.phone_number),
        expires_at=rfc3339(challenge.expires_at),
        resend_available_at=rfc3339(challenge.next_resend_at),
    )


def _not_verified(check: CodeCheck) -> dict[str, Any]:
    return {"failure_reason": check.failure_reason, "attempts_remaining": check.attempts_remaining}


def verify_result(verification: Verification) -> VerifyResult:
    """The server verify's answer."""
    from otp_core.models import VerifyResult  # only this answer's area is loaded

    check, challenge = verification.check, verification.check.challenge
    if not check.verified or challenge is None:
        return VerifyResult.model_validate({"is_verified": False, **_not_verified(check)})
    return VerifyResult(
        is_verified=True,
        token=verification.token,
        attempts_remaining=0,
        user_id=challenge.user_id,
        phone_number=challenge.phone_number,
        action=challenge.action,
    )


def client_verify_result(verification: ClientVerification) -> ClientVerifyResult:
    """The client verify's answer."""
    from otp_core.models import ClientVerifyResult  # only this answer's area is loaded

    if not verification.check.verified:
        return ClientVerifyResult.model_validate({"is_verified": False, **_not_verified(verification.check)})
    return ClientVerifyResult(is_verified=True, token=verification.token, attempts_remaining=0)


def phone_validate_result(check: CodeCheck) -> PhoneValidateResult:
    """The signed-in validate's answer."""
    from otp_core.models import PhoneValidateResult  # only this answer's area is loaded

    if check.verified:
        return PhoneValidateResult(verified=True, enrolled=check.enrolled)
    return PhoneValidateResult.model_validate({"verified": False, **_not_verified(check)})


def claim_result(challenge: Challenge, user_id: str) -> ClaimResult:
    from otp_core.models import ClaimResult  # only this answer's area is loaded

    return ClaimResult(
        challenge_id=challenge.challenge_id,
        user_id=user_id,
        phone_number=challenge.phone_number,
        action=challenge.action,
    )


def challenge_view(challenge: Challenge, now: int) -> ChallengeView:
    """A challenge's public state at ``now`` (expiry and exhaustion are derived, never stored)."""
    from otp_core.models import ChallengeView  # only this answer's area is loaded

    state = challenge.state_at(now)
    return ChallengeView(
        challenge_id=challenge.challenge_id,
        state=state.value,
        action=challenge.action,
        user_id=challenge.claimed_by or challenge.user_id,
        phone_mask=mask_phone(challenge.phone_number),
        created_at=rfc3339(challenge.created_at),
        expires_at=rfc3339(challenge.expires_at),
        attempts_remaining=challenge.attempts_remaining if state is ChallengeState.PENDING else 0,
    )


HOSTED_PAGE_PATH = "/v1/hosted/challenge"


def track_result(tracked: Tracked, base_url: str | None = None) -> TrackResult:
    """``/v1/track``: with ``url``, the hosted page at ``base_url`` with the client token in the fragment
    (never in the query, so it reaches no server log), whenever the state is not BLOCK."""
    from otp_core.models import TrackResult  # only this answer's area is loaded

    url = None
    if base_url is not None and tracked.state != "BLOCK":
        url = f"{base_url}{HOSTED_PAGE_PATH}#token={tracked.token}"
    return TrackResult.model_validate(
        {
            "state": tracked.state,
            "token": tracked.token,
            "is_enrolled": tracked.enrolled,
            "enrolled_verification_methods": ["SMS"] if tracked.enrolled else [],
            "url": url,
        }
    )


def validate_result(validation: Validation) -> ValidateResult:
    """``/v1/validate``: the token's subject, action and challenge when its claims could be read."""
    from otp_core.models import ValidateResult  # only this answer's area is loaded

    fields: dict[str, Any] = {}
    claims = validation.claims
    if claims is not None:
        fields = {
            "state": claims.get("state"),
            "user_id": claims.get("sub"),
            "action": claims.get("act"),
            "challenge_id": claims.get("chl"),
            "verification_method": "SMS" if claims.get("chl") else None,
            "phone_number": claims.get("phone_number"),
        }
    return ValidateResult.model_validate(
        {"is_valid": validation.valid, "failure_reason": validation.failure_reason, **fields}
    )


def authenticator_view(authenticator: Authenticator) -> AuthenticatorView:
    from otp_core.models import AuthenticatorView  # only this answer's area is loaded

    return AuthenticatorView(
        authenticator_id=authenticator.authenticator_id,
        phone_mask=mask_phone(authenticator.phone_number),
        verified_at=rfc3339(authenticator.verified_at),
        created_at=rfc3339(authenticator.created_at),
    )


def authenticator_list(authenticators: list[Authenticator]) -> AuthenticatorList:
    from otp_core.models import AuthenticatorList  # only this answer's area is loaded

    return AuthenticatorList(authenticators=[authenticator_view(a) for a in authenticators])


def block_view(block: Block) -> BlockView:
    from otp_core.models import BlockView  # only this answer's area is loaded

    return BlockView(
        app_id=block.app_id,
        bucket=block.bucket.name,
        reason=block.reason.value,
        since=rfc3339(block.since),
        until=rfc3339(block.until) if block.until is not None else None,
        sends=block.sends,
        verified=block.verified,
    )


def block_list(blocks: list[Block]) -> BlockList:
    from otp_core.models import BlockList  # only this answer's area is loaded

    return BlockList(blocks=[block_view(block) for block in blocks])


def safe_list(entries: tuple[str, ...]) -> SafeList:
    from otp_core.models import SafeList  # only this answer's area is loaded

    return SafeList(entries=list(entries))


def app_view(record: AppRecord) -> AppView:
    """An app record as the admin API shows it: its overrides, never the stack's policy under them."""
    from otp_core.models import AppView  # only this answer's area is loaded

    return AppView(
        app_id=record.app_id,
        name=record.name,
        settings=dict(record.settings),
        created_at=rfc3339(record.created_at),
        twilio_service_sid=record.twilio_service_sid,
        twilio_account_sid=record.twilio_account_sid,
    )


def app_list(records: list[AppRecord]) -> AppList:
    from otp_core.models import AppList  # only this answer's area is loaded

    return AppList(apps=[app_view(record) for record in records])


def key_created(made: NewKey) -> KeyCreated:
    """The answer that creates a key: the only place its secret is ever shown."""
    from otp_core.models import KeyCreated  # only this answer's area is loaded

    return KeyCreated(key_id=made.key.key_id, api_key=made.secret, created_at=rfc3339(made.key.created_at))


def key_view(key: ApiKey) -> KeyView:
    """A listed key: no secret, no digest."""
    from otp_core.models import KeyView  # only this answer's area is loaded

    return KeyView(
        key_id=key.key_id,
        description=key.description,
        created_at=rfc3339(key.created_at),
        last_used_at=rfc3339(key.last_used_at) if key.last_used_at is not None else None,
    )


def key_list(keys: list[ApiKey]) -> KeyList:
    from otp_core.models import KeyList  # only this answer's area is loaded

    return KeyList(keys=[key_view(key) for key in keys])
