"""Request signatures: the webhook provider's (both directions) and Twilio's status callbacks.

Every header value reaching these functions is untrusted: it may be absent, overlong, non-ASCII or hold
characters Python calls digits (``"²"``, ``"١٢٣"``). Each is checked against a strict ASCII pattern first, the
comparison is constant-time over bytes (:func:`hmac.compare_digest` raises on non-ASCII ``str``), and a value
that fails any check simply fails to verify: nothing here raises on request input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable

TIMESTAMP_HEADER = "X-Otp-Timestamp"
SIGNATURE_HEADER = "X-Otp-Signature"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_TOLERANCE_SECONDS = 300

# Epoch seconds in ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Hex SHA-256 is 64 characters; upper case is accepted because some receivers' libraries emit it.
_WEBHOOK_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
# Base64 of a 20-byte SHA-1 digest is 28 characters; the cap only bounds what is compared.
_TWILIO_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{1,64}={0,2}")
# Whitespace a proxy may leave around a header value; only ASCII (str.strip() would also drop U+2003...).
_HEADER_WHITESPACE = " \t"


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
        True only for a well-formed, fresh, correctly signed request; False for anything else, never an error.
    """
    timestamp = _token(timestamp, _TIMESTAMP)
    signature = _token(signature, _WEBHOOK_SIGNATURE)
    if not secret or timestamp is None or signature is None:
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = webhook_signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("ascii"))


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
    presented = _token(signature, _TWILIO_SIGNATURE)
    if not auth_token or presented is None:
        return False
    try:
        expected = twilio_signature(auth_token, url, params)
    except UnicodeEncodeError:
        # A lone surrogate in the body or the URL (possible in an event's JSON) has no UTF-8 form: it cannot
        # be what Twilio signed.
        return False
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("ascii"))


def _token(value: object, pattern: re.Pattern[str]) -> str | None:
    """``value`` without surrounding ASCII whitespace if it is a ``str`` matching ``pattern`` exactly, else None.

    ``pattern`` is ASCII-only, so a match is safe to encode as ASCII and to pass to ``int()``.
    """
    if not isinstance(value, str) or len(value) > 256:
        return None
    value = value.strip(_HEADER_WHITESPACE)
    return value if pattern.fullmatch(value) else None
