"""POST /v1/delivery-status/{provider}: a provider's delivery report, authenticated by the provider's signature.

Public route (no API key): Twilio's status callback (form-encoded, ``X-Twilio-Signature``) and the webhook
provider's callback (JSON, ``X-Otp-Timestamp`` + ``X-Otp-Signature``). A verified report of ``delivered`` or
``failed`` is recorded on the challenge; intermediate statuses are acknowledged and ignored.

Everything before the signature check is read from an unauthenticated request, so each read is total: a
repeated, non-string, non-ASCII or undecodable header, query value or body answers 401, never 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from otp_core import runtime
from otp_core.adapters.circuit import record_delivery
from otp_core.errors import DependencyError, NotFoundError, UnauthorizedError
from otp_core.http import make_resolver, parse_body
from otp_core.observability import logger, metrics, tracer
from otp_core.providers.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    twilio_callback_url,
    verify_twilio,
    verify_webhook,
)

app = make_resolver()
_CHALLENGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Twilio's final statuses; the others (queued, sending, sent, ...) are progress reports.
TWILIO_OUTCOMES = {"delivered": "delivered", "read": "delivered", "undelivered": "failed", "failed": "failed"}
_BAD_SIGNATURE = "the request signature is invalid"
# Twilio's status callbacks carry about twenty fields; a body with far more cannot be one.
_MAX_FORM_FIELDS = 100


class WebhookReport(BaseModel):
    """The webhook provider's delivery report (see otp_core.providers.webhook)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    challenge_id: str = Field(alias="challengeId", pattern=_CHALLENGE_ID.pattern)
    message_id: str | None = Field(default=None, alias="messageId", min_length=1, max_length=256)
    status: Literal["delivered", "failed"]


@app.post("/v1/delivery-status/<provider>")
def delivery_status(provider: str) -> Response[str]:
    if provider == "twilio":
        return _twilio()
    if provider == "webhook":
        return _webhook()
    raise NotFoundError("no such route")


def _twilio() -> Response[str]:
    auth_token = _credential("twilio", "authToken")
    challenge_id = _single_query_value("challengeId")
    if not _CHALLENGE_ID.fullmatch(challenge_id):
        # Only URLs this service generated are signed, and each carries a challenge ID it generated.
        raise UnauthorizedError(_BAD_SIGNATURE)
    params = _form_fields()
    signature = _header(TWILIO_SIGNATURE_HEADER)
    if not verify_twilio(auth_token, url=_twilio_url(challenge_id), params=params, signature=signature):
        raise UnauthorizedError(_BAD_SIGNATURE)

    form: dict[str, list[str]] = {}
    for name, value in params:
        form.setdefault(name, []).append(value)
    statuses, sids = form.get("MessageStatus", []), form.get("MessageSid", [])
    outcome = TWILIO_OUTCOMES.get(statuses[0]) if len(statuses) == 1 else None
    if outcome is None or len(sids) > 1:
        # Progress reports, and anything Twilio does not send (a repeated status or SID), change nothing.
        return _accepted()
    return _record(challenge_id, "twilio", sids[0] if sids and sids[0] else None, outcome)


def _twilio_url(challenge_id: str) -> str:
    """The URL Twilio signed: the configured public base, else the one this request came in on."""
    base = runtime.settings().delivery_callback_base_url
    if base:
        return twilio_callback_url(base, challenge_id)
    event = app.current_event
    host = _header("Host") or ""
    # requestContext.path is the path the client called (with the stage or custom-domain base path).
    path = event.request_context.path or event.path
    return f"https://{host}{path}?{urlencode({'challengeId': challenge_id})}"


def _form_fields() -> list[tuple[str, str]]:
    """The form Twilio posted, as (name, value) pairs in order.

    Raises
    ------
    UnauthorizedError
        The body is not UTF-8 or has more fields than a status callback: it cannot be one Twilio signed.
    """
    body = _raw_body()
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError included
        raise UnauthorizedError(_BAD_SIGNATURE) from exc


def _webhook() -> Response[str]:
    secret = _credential("webhook", "secret")
    valid = verify_webhook(
        secret,
        timestamp=_header(TIMESTAMP_HEADER),
        signature=_header(SIGNATURE_HEADER),
        body=_raw_body(),
        now=runtime.clock().now(),
        tolerance_seconds=runtime.settings().delivery_callback_tolerance_seconds,
    )
    if not valid:
        raise UnauthorizedError(_BAD_SIGNATURE)
    report = parse_body(app, WebhookReport)
    return _record(report.challenge_id, "webhook", report.message_id, report.status)


def _record(challenge_id: str, provider: str, message_id: str | None, status: str) -> Response[str]:
    settings = runtime.settings()
    now = runtime.clock().now()
    written = record_delivery(
        runtime.client("dynamodb"), settings.table_name, challenge_id, provider, message_id, status, now, callback=True
    )
    metrics.add_metric(name="SmsDelivered" if status == "delivered" else "SmsUndelivered", unit="Count", value=1)
    logger.info("delivery status", provider=provider, challenge_id=challenge_id, status=status, recorded=written)
    # Unknown or superseded messages are acknowledged too: a provider retrying them would change nothing.
    return _accepted()


def _accepted() -> Response[str]:
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


def _single_query_value(name: str) -> str:
    values = app.current_event.raw_event.get("multiValueQueryStringParameters") or {}
    found = values.get(name) if isinstance(values, dict) and set(values) == {name} else None
    if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], str):
        # Only URLs this service generated are signed; anything else cannot verify.
        raise UnauthorizedError(_BAD_SIGNATURE)
    return found[0]


def _header(name: str) -> str | None:
    """The one value of header ``name`` (any case), or None when it is absent, repeated or not a string.

    API Gateway keeps only the last of repeated headers in ``headers`` and all of them in
    ``multiValueHeaders``. A signature or timestamp sent twice is ambiguous, so it verifies nothing.
    """
    event = app.current_event.raw_event
    wanted = name.lower()
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict) and multi:
        values = [
            value
            for key, listed in multi.items()
            if isinstance(key, str) and key.lower() == wanted
            for value in (listed if isinstance(listed, list) else [listed])
        ]
    else:
        single = event.get("headers")
        values = [
            value
            for key, value in (single.items() if isinstance(single, dict) else ())
            if isinstance(key, str) and key.lower() == wanted
        ]
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


def _raw_body() -> bytes:
    """The request body exactly as the provider sent it (what its signature covers).

    Raises
    ------
    UnauthorizedError
        A base64 body that does not decode, or a text body with no UTF-8 form (a lone surrogate): neither can
        be what a provider signed.
    """
    event = app.current_event.raw_event
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise UnauthorizedError(_BAD_SIGNATURE)
    try:
        if event.get("isBase64Encoded") is True:
            return base64.b64decode(body, validate=True)
        return body.encode("utf-8")
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise UnauthorizedError(_BAD_SIGNATURE) from exc


def _credential(provider: str, key: str) -> str:
    """One field of the provider secret (cached by the Powertools parameters utility in runtime.secret)."""
    secret_id = runtime.settings().sms_provider_secret_id
    if not secret_id:
        raise NotFoundError("no such route")
    try:
        document = json.loads(runtime.secret(secret_id))
    except ValueError as exc:
        raise DependencyError("delivery status is unavailable; retry later") from exc
    section = document.get(provider) if isinstance(document, dict) else None
    value = section.get(key) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        # A provider without credentials in this stack has no callbacks to receive.
        raise NotFoundError("no such route")
    return value


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
