"""Request signatures: the webhook provider's (both directions) and Twilio's status callbacks.

Every comparison is constant-time (:func:`hmac.compare_digest`); a malformed header simply fails to verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable

TIMESTAMP_HEADER = "X-Otp-Timestamp"
SIGNATURE_HEADER = "X-Otp-Signature"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


# -- webhook provider -------------------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under the shared secret.

    Signing the timestamp with the body lets a receiver refuse old requests (replays) without keeping state.
    """
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_webhook(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Check a webhook request's signature and freshness.

    Parameters
    ----------
    secret:
        The shared secret.
    timestamp, signature:
        The ``X-Otp-Timestamp`` (epoch seconds) and ``X-Otp-Signature`` (hex) header values.
    body:
        The raw request body, exactly as received.
    now:
        Current epoch seconds.
    tolerance_seconds:
        How far the timestamp may be from ``now``, either way; older requests are treated as replays.

    Returns
    -------
    bool
        True only for a well-formed, fresh, correctly signed request.
    """
    if not secret or not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = webhook_signature(secret, timestamp, body)
    return hmac.compare_digest(expected, signature.strip().lower())


# -- Twilio -----------------------------------------------------------------------------------------------


def twilio_callback_url(base_url: str, challenge_id: str) -> str:
    """The StatusCallback URL for one challenge.

    The challenge ID rides in the query string because Twilio signs the whole URL: a callback cannot be
    redirected to another challenge without breaking its signature.
    """
    query = urllib.parse.urlencode({"challengeId": challenge_id})
    return f"{base_url.rstrip('/')}/v1/delivery-status/twilio?{query}"


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 of the full URL followed by each POST parameter.

    Parameters are sorted by name and each name is directly followed by its value, as Twilio's helper
    libraries do (repeated names contribute each distinct value, sorted).
    See https://www.twilio.com/docs/usage/security#validating-requests
    """
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio(auth_token: str, *, url: str, params: Iterable[tuple[str, str]], signature: str | None) -> bool:
    """Check an ``X-Twilio-Signature`` header against the URL Twilio called and the form it posted.

    Twilio signatures carry no timestamp, so a captured callback could be posted again; the delivery-status
    function makes that harmless (a replay writes the outcome already recorded, for the same message ID).
    """
    if not auth_token or not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected, signature.strip())
